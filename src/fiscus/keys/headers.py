"""Per-request attribution and priority from the optional `x-fiscus-*` headers sent with a virtual key."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from fiscus.attribution import Attribution
from fiscus.errors import FiscusError
from fiscus.keys.model import VirtualKey

# header -> attribution dimension
HEADER_DIMENSIONS: dict[str, str] = {
    "x-fiscus-workflow": "workflow",
    "x-fiscus-session": "session",
    "x-fiscus-parent-session": "parent_session",
    "x-fiscus-task-class": "task_class",
    "x-fiscus-tenant": "tenant",
    "x-fiscus-user": "user",
    "x-fiscus-outcome": "outcome",
    "x-fiscus-agent": "agent",
    "x-fiscus-team": "team",
}
# A locked key's agent and team stand: budgets and chargeback hang on them, so a caller must not pick them.
LOCKED_HEADERS = ("x-fiscus-agent", "x-fiscus-team")
PRIORITY_HEADER = "x-fiscus-priority"
MAX_VALUE_CHARS = 256


class Priority(StrEnum):
    """How a request ranks when budgets or rate limits run short."""

    CRITICAL = "critical"
    NORMAL = "normal"
    BACKGROUND = "background"


class InvalidHeaderError(FiscusError):
    """An `x-fiscus-*` header has a value fiscus cannot use (the gateway answers 400)."""


def _lowered(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items() if name[:9].lower() == "x-fiscus-"}


def _value(header: str, raw: str) -> str | None:
    value = raw.strip()
    if len(value) > MAX_VALUE_CHARS:
        raise InvalidHeaderError(f"{header}: value longer than {MAX_VALUE_CHARS} characters")
    if not value.isprintable():
        raise InvalidHeaderError(f"{header}: value contains control characters")
    return value or None


def resolve_attribution(key: VirtualKey, headers: Mapping[str, str]) -> Attribution:
    """The key's attribution refined by the request's headers. On a locked key, `x-fiscus-agent` and
    `x-fiscus-team` are ignored and the key's values kept (see `ignored_headers` to report them)."""
    sent = _lowered(headers)
    values: dict[str, str | None] = {}
    for header, dimension in HEADER_DIMENSIONS.items():
        raw = sent.get(header)
        if raw is None or (key.locked and header in LOCKED_HEADERS):
            continue
        values[dimension] = _value(header, raw)
    return key.attribution.refine(**values)


def ignored_headers(key: VirtualKey, headers: Mapping[str, str]) -> tuple[str, ...]:
    """The headers `resolve_attribution` ignored because the key is locked (e.g. to warn in a response header)."""
    if not key.locked:
        return ()
    sent = _lowered(headers)
    return tuple(h for h in LOCKED_HEADERS if h in sent)


def resolve_priority(headers: Mapping[str, str]) -> Priority:
    """`x-fiscus-priority`: critical, normal or background; absent means normal."""
    raw = _lowered(headers).get(PRIORITY_HEADER)
    if raw is None or not raw.strip():
        return Priority.NORMAL
    try:
        return Priority(raw.strip().lower())
    except ValueError:
        allowed = ", ".join(p.value for p in Priority)
        shown = raw.strip()[:40]
        raise InvalidHeaderError(f"{PRIORITY_HEADER}: {shown!r} is not one of {allowed}") from None
