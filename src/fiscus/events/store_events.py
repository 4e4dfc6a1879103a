"""Events of the budget store itself: its state lost (and what the governor did about it), unreachable, back.

Plain frozen data with `to_dict()` (JSON-safe), handed to the governor's listeners like the budget events, so
the notify channels announce them and the gateway counts them on /metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class BudgetStoreLost:
    """The store's counters were gone. `policy` is `store.on_store_loss`; `rebuilt` counters came back from the
    ledger (`spent_usd` in all) under `rebuild`; under `fail_closed` calls are refused until an operator rebuilds
    (`fiscus budgets rebuild`), under `fail_open` they are admitted on budgets counted from zero."""

    where: str
    policy: str
    message: str
    rebuilt: int = 0
    spent_usd: Decimal = Decimal(0)
    timestamp: datetime = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "budget_store_lost",
            "where": self.where,
            "policy": self.policy,
            "message": self.message,
            "rebuilt": self.rebuilt,
            "spent_usd": format(self.spent_usd.normalize(), "f"),
            "timestamp": self.timestamp.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class BudgetStoreDown:
    """The store could not be reached (once per outage and process); `message` says what calls get meanwhile."""

    where: str
    policy: str
    message: str
    timestamp: datetime = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "budget_store_down",
            "where": self.where,
            "policy": self.policy,
            "message": self.message,
            "timestamp": self.timestamp.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class BudgetStoreBack:
    """The store answers again after an outage."""

    where: str
    message: str
    timestamp: datetime = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "budget_store_back",
            "where": self.where,
            "message": self.message,
            "timestamp": self.timestamp.isoformat(),
        }
