"""Events the guards announce: a loop detected, a breaker tripped, a session ended.

Plain frozen data with `to_dict()` (JSON-safe), handed to the governor's `on_event` hook and to
orchestrators, so notifiers and metrics treat them like the budget events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class LoopDetected:
    """A loop guard fired. `kind` names the check (repeated_tool_call, near_duplicate_request, step_limit,
    ping_pong, spend_without_progress); `evidence` holds what it saw, JSON-safe; `action` what follows."""

    kind: str
    session: str | None
    agent: str | None
    action: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    timestamp: datetime = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "loop_detected",
            "kind": self.kind,
            "session": self.session,
            "agent": self.agent,
            "action": self.action,
            "message": self.message,
            "evidence": dict(self.evidence),
            "timestamp": self.timestamp.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class BreakerTripped:
    """A circuit breaker opened. `scope` is "global" or "agent:<name>"; `reason` the trip cause
    (budget_exhausted, spend_rate, error_rate, loop); `reopens_at` when it turns half-open."""

    scope: str
    reason: str
    message: str
    reopens_at: datetime
    postmortem_path: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    timestamp: datetime = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "breaker_tripped",
            "scope": self.scope,
            "reason": self.reason,
            "message": self.message,
            "reopens_at": self.reopens_at.isoformat(),
            "postmortem_path": self.postmortem_path,
            "details": dict(self.details),
            "timestamp": self.timestamp.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class SpendRateLevel:
    """The account-wide spend rate of a breaker's scope reached a level of the seeds' alert table: `warning` at
    2 × the median hourly spend, `critical` at 5 × (the breaker itself trips at its `spend_rate_k`)."""

    scope: str
    level: str
    hour_spend: Decimal
    median_hourly: Decimal
    ratio: Decimal
    timestamp: datetime = field(default_factory=_now)

    @property
    def message(self) -> str:
        return (
            f"{self.scope} spend rate {self.level}: ${self.hour_spend} this hour is {self.ratio} × "
            f"the median hourly spend ${self.median_hourly}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "spend_rate_level",
            "scope": self.scope,
            "level": self.level,
            "hour_spend_usd": format(self.hour_spend, "f"),
            "median_hourly_usd": format(self.median_hourly, "f"),
            "ratio": format(self.ratio, "f"),
            "message": self.message,
            "timestamp": self.timestamp.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """The summary of one agent session: what it cost, how many steps, and why it ended.

    `outcome` is completed | partial | loop | ceiling | error | breaker."""

    session: str
    parent_session: str | None
    agent: str | None
    workflow: str | None
    outcome: str
    reason: str
    cost: Decimal
    tokens: int
    steps: int
    ceiling_usd: Decimal | None = None
    timestamp: datetime = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "session_ended",
            "session": self.session,
            "parent_session": self.parent_session,
            "agent": self.agent,
            "workflow": self.workflow,
            "outcome": self.outcome,
            "reason": self.reason,
            "cost_usd": format(self.cost, "f"),
            "tokens": self.tokens,
            "steps": self.steps,
            "ceiling_usd": None if self.ceiling_usd is None else format(self.ceiling_usd, "f"),
            "timestamp": self.timestamp.isoformat(),
        }
