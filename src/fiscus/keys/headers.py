"""Per-request attribution and priority from the optional `x-fiscus-*` headers sent with a virtual key."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum

from fiscus.attribution import Attribution
from fiscus.errors import FiscusError
from fiscus.keys.claims import CLAIMABLE, OnDisallowed
from fiscus.keys.model import VirtualKey

log = logging.getLogger("fiscus.keys")

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
PRIORITY_HEADER = "x-fiscus-priority"
MAX_VALUE_CHARS = 256


class Priority(StrEnum):
    """How a request ranks when budgets or rate limits run short."""

    CRITICAL = "critical"
    NORMAL = "normal"
    BACKGROUND = "background"


class InvalidHeaderError(FiscusError):
    """An `x-fiscus-*` header has a value fiscus cannot use (the gateway answers 400)."""


class DisallowedClaimError(FiscusError):
    """A header claims an attribution value its key does not allow (the gateway answers 403)."""

    def __init__(self, message: str, header: str) -> None:
        super().__init__(message)
        self.header = header


def _lowered(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items() if name[:9].lower() == "x-fiscus-"}


def _value(header: str, raw: str) -> str | None:
    value = raw.strip()
    if len(value) > MAX_VALUE_CHARS:
        raise InvalidHeaderError(f"{header}: value longer than {MAX_VALUE_CHARS} characters")
    if not value.isprintable():
        raise InvalidHeaderError(f"{header}: value contains control characters")
    return value or None


def resolve_claims(key: VirtualKey, headers: Mapping[str, str]) -> tuple[Attribution, tuple[str, ...]]:
    """The key's attribution refined by the request's headers, and the headers dropped because the key does
    not allow their values (on a key set to ignore them; a key set to refuse raises `DisallowedClaimError`)."""
    sent = _lowered(headers)
    own = key.attribution
    claims = key.claims
    values: dict[str, str | None] = {}
    ignored: list[str] = []
    for header, dimension in HEADER_DIMENSIONS.items():
        raw = sent.get(header)
        if raw is None:
            continue
        value = _value(header, raw)
        if value is not None and dimension in CLAIMABLE and not claims.permits(dimension, value, own.get(dimension)):
            if claims.on_disallowed is OnDisallowed.REFUSE:
                allowed = claims.describe(dimension, own.get(dimension))
                raise DisallowedClaimError(
                    f"{header}: {value[:80]!r} is not allowed for key {key.id}, which may claim {allowed}", header
                )
            # Values are attribution labels, not secrets or prompt text; cut short so a log line stays a line.
            log.warning("key %s: ignored %s %r (not on its allow-list)", key.id, header, value[:80])
            ignored.append(header)
            continue
        values[dimension] = value
    return own.refine(**values), tuple(ignored)


def resolve_attribution(key: VirtualKey, headers: Mapping[str, str]) -> Attribution:
    """The key's attribution refined by the request's headers (see `resolve_claims`)."""
    return resolve_claims(key, headers)[0]


def ignored_headers(key: VirtualKey, headers: Mapping[str, str]) -> tuple[str, ...]:
    """The headers `resolve_attribution` drops on a key set to ignore what it does not allow."""
    return resolve_claims(key, headers)[1]


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
