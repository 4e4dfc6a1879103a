"""Events budgets announce: a threshold crossed (once per window), a budget exhausted, a call refused.

Plain frozen data with `to_dict()` (JSON-safe), handed to the governor's `on_event` hook for notifiers and
metrics. The cost ledger keeps `CostEvent`s only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any


def _now() -> datetime:
    return datetime.now(UTC)


def _d(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a budget instance stands, for a person: its scope (each dimension and its value or values), what is
    used (spent + reserved) in dollars against its dollar limit, and on the meter that binds (tokens or requests)
    when that is not dollars; the agent and team of the call that brought the news."""

    scope: tuple[tuple[str, str], ...] = ()
    spent_usd: Decimal | None = None
    limit_usd: Decimal | None = None
    meter: str = "usd"
    used: int | None = None  # on `meter`, when it is tokens or requests
    limit: int | None = None
    agent: str | None = None
    team: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": dict(self.scope),
            "spent_usd": _d(self.spent_usd),
            "limit_usd": _d(self.limit_usd),
            "meter": self.meter,
            "used": self.used,
            "limit": self.limit,
            "agent": self.agent,
            "team": self.team,
        }


_NOWHERE = Standing()


@dataclass(frozen=True, slots=True)
class BudgetThresholdCrossed:
    """A budget instance reached a threshold; announced once per window (across processes, via the store)."""

    budget: str
    instance: str
    window: str
    threshold: Decimal
    action: str
    utilisation: Decimal
    channel: str | None = None
    resets_at: datetime | None = None
    standing: Standing = _NOWHERE
    timestamp: datetime = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "budget_threshold_crossed",
            "budget": self.budget,
            "instance": self.instance,
            "window": self.window,
            "threshold": _d(self.threshold),
            "action": self.action,
            "utilisation": _d(self.utilisation),
            "channel": self.channel,
            "resets_at": self.resets_at.isoformat() if self.resets_at else None,
            **self.standing.to_dict(),
            "timestamp": self.timestamp.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class BudgetExhausted:
    """A call did not fit a budget instance; announced once per window. `action` is partial or block."""

    budget: str
    instance: str
    window: str
    action: str
    utilisation: Decimal
    resets_at: datetime | None = None
    standing: Standing = _NOWHERE
    timestamp: datetime = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "budget_exhausted",
            "budget": self.budget,
            "instance": self.instance,
            "window": self.window,
            "action": self.action,
            "utilisation": _d(self.utilisation),
            "resets_at": self.resets_at.isoformat() if self.resets_at else None,
            **self.standing.to_dict(),
            "timestamp": self.timestamp.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class ReservationRaced:
    """The store refused a reservation the decision expected to fit (another caller got there first)."""

    budget: str
    attempts: int
    timestamp: datetime = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "reservation_raced",
            "budget": self.budget,
            "attempts": self.attempts,
            "timestamp": self.timestamp.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class BudgetOffPace:
    """A calendar budget's use so far, carried at the same rate, passes its limit before the window resets;
    announced once per window (across processes, via the store), while there is still time to act."""

    budget: str
    instance: str
    window: str
    utilisation: Decimal  # now
    projected: Decimal  # by the reset, at the pace so far
    exhausts_at: datetime | None
    resets_at: datetime | None = None
    standing: Standing = _NOWHERE
    timestamp: datetime = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "budget_off_pace",
            "budget": self.budget,
            "instance": self.instance,
            "window": self.window,
            "utilisation": _d(self.utilisation),
            "projected": _d(self.projected),
            "exhausts_at": self.exhausts_at.isoformat() if self.exhausts_at else None,
            "resets_at": self.resets_at.isoformat() if self.resets_at else None,
            **self.standing.to_dict(),
            "timestamp": self.timestamp.isoformat(),
        }
