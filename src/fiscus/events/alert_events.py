"""`AlertRaised`: a signal of the alert table crossed its warning or critical level; announced once per window
(across processes, via the budget store) to the notify channels, with who answers for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any


class Level(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class AlertRaised:
    signal: str  # hourly_spend, cache_miss, session_cost, daily_budget_burn, quota_utilisation, context_growth
    level: Level
    subject: tuple[tuple[str, str], ...]  # what it is about (workflow=support, budget=…); () for everything
    value: Decimal  # what was measured: a multiple of the baseline, a share, a utilisation
    limit: Decimal  # the level it reached
    message: str  # one plain sentence
    window: str  # the window it is announced once in (an hour, a day, a budget window, a session)
    expires_at: float  # when the once-per-window claim may go
    owner: str | None = None
    detail: dict[str, str] = field(default_factory=dict)
    channel: str | None = None  # the notify channel for its level; None: the default channels
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def subject_label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.subject) or "all spend"

    @property
    def key(self) -> str:
        """Identifies the alert within its window (the level apart)."""
        return f"{self.signal}|{self.subject_label}|{self.window}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "alert_raised",
            "signal": self.signal,
            "level": str(self.level),
            "subject": dict(self.subject),
            "value": format(self.value, "f"),
            "limit": format(self.limit, "f"),
            "message": self.message,
            "window": self.window,
            "owner": self.owner,
            "detail": dict(self.detail),
            "timestamp": self.timestamp.isoformat(),
        }
