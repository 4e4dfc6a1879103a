"""`KeyClaims`: what a key's requests may claim through the `x-fiscus-*` headers.

Budgets and chargeback hang on the attribution, so a header may only *refine* what the key is allowed to be.
Per dimension a key lists the values it may claim, exactly or as glob patterns (`research-*`); without a list,
the key's own agent and team stand (organization and environment have no header at all), while workflow, task
class, tenant and user are free to set — the key's values for them are defaults. Session, parent session and
outcome describe the run, not who pays, and are always free.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase

from fiscus.errors import FiscusError

# dimension → header, for the dimensions an allow-list can name
CLAIMABLE: dict[str, str] = {
    "agent": "x-fiscus-agent",
    "team": "x-fiscus-team",
    "workflow": "x-fiscus-workflow",
    "task_class": "x-fiscus-task-class",
    "tenant": "x-fiscus-tenant",
    "user": "x-fiscus-user",
}
# Without an allow-list these keep the key's own value: they are who pays.
FIXED_WITHOUT_LIST = frozenset({"agent", "team"})
MAX_PATTERN_CHARS = 256


class OnDisallowed(StrEnum):
    """What a request that claims a value its key does not allow gets."""

    REFUSE = "refuse"  # 403 in the provider's error format, naming the header
    IGNORE = "ignore"  # the header is dropped (the key's own value stands) and a warning logged


class ClaimsError(FiscusError):
    """An allow-list that cannot be stored (empty or unprintable pattern, unknown dimension)."""


@dataclass(frozen=True, slots=True)
class KeyClaims:
    """`allow` pairs a dimension with the patterns it may claim; a dimension left out has no list."""

    allow: tuple[tuple[str, tuple[str, ...]], ...] = ()
    on_disallowed: OnDisallowed = OnDisallowed.REFUSE

    @classmethod
    def of(
        cls, allow: dict[str, list[str] | tuple[str, ...]] | None = None, on_disallowed: str = "refuse"
    ) -> KeyClaims:
        """Validated claims; dimensions with no patterns are left out."""
        pairs = []
        for dimension, patterns in (allow or {}).items():
            if dimension not in CLAIMABLE:
                raise ClaimsError(
                    f"cannot allow-list {dimension!r}: a key can list {', '.join(CLAIMABLE)} (organization and "
                    "environment are the key's own)"
                )
            cleaned = tuple(dict.fromkeys(_pattern(dimension, p) for p in patterns))
            if cleaned:
                pairs.append((dimension, cleaned))
        try:
            action = OnDisallowed(on_disallowed)
        except ValueError:
            raise ClaimsError(f"on_disallowed must be refuse or ignore, got {on_disallowed!r}") from None
        order = list(CLAIMABLE)
        return cls(tuple(sorted(pairs, key=lambda pair: order.index(pair[0]))), action)

    def patterns(self, dimension: str) -> tuple[str, ...] | None:
        for name, patterns in self.allow:
            if name == dimension:
                return patterns
        return None

    def permits(self, dimension: str, value: str, own: str | None) -> bool:
        """Whether a request may set `dimension` to `value` on a key whose own value is `own`."""
        if value == own:
            return True
        patterns = self.patterns(dimension)
        if patterns is None:
            return dimension not in FIXED_WITHOUT_LIST
        return any(fnmatchcase(value, pattern) for pattern in patterns)

    def describe(self, dimension: str, own: str | None) -> str:
        """What the key allows for `dimension`, for an error message."""
        patterns = self.patterns(dimension)
        if patterns is None:
            return f"only its own {dimension} {own!r}" if own else f"no {dimension}"
        shown = ", ".join(patterns)
        return f"{shown} (or its own {own!r})" if own else shown

    def to_dict(self) -> dict[str, list[str]]:
        return {dimension: list(patterns) for dimension, patterns in self.allow}

    def label(self) -> str:
        """`agent=research-*,planner workflow=*`, or "-" when the key lists nothing."""
        return " ".join(f"{dim}={','.join(patterns)}" for dim, patterns in self.allow) or "-"


def _pattern(dimension: str, pattern: str) -> str:
    value = pattern.strip()
    if not value:
        raise ClaimsError(f"allow-list for {dimension}: empty pattern")
    if len(value) > MAX_PATTERN_CHARS or not value.isprintable():
        raise ClaimsError(f"allow-list for {dimension}: {value[:40]!r} is too long or has control characters")
    return value


NO_CLAIMS = KeyClaims()  # a key that may claim nothing beyond its own agent and team
