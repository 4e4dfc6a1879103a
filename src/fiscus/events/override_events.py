"""Events of overrides: granted, revoked, and first used (once per override, across processes).

Plain frozen data with `to_dict()` (JSON-safe), handed to the governor's listeners like the budget events, so
the notify channels announce them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class OverrideGranted:
    id: str
    reason: str
    expires_at: datetime
    key_id: str | None = None
    budget: str | None = None
    granted_by: str | None = None
    timestamp: datetime = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "override_granted",
            "id": self.id,
            "key_id": self.key_id,
            "budget": self.budget,
            "reason": self.reason,
            "granted_by": self.granted_by,
            "expires_at": self.expires_at.isoformat(),
            "timestamp": self.timestamp.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class OverrideRevoked:
    id: str
    key_id: str | None = None
    budget: str | None = None
    timestamp: datetime = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "override_revoked",
            "id": self.id,
            "key_id": self.key_id,
            "budget": self.budget,
            "timestamp": self.timestamp.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class OverrideUsed:
    """An override let a call past a refusal for the first time: `budgets` it lifted, the `guards` it passed
    (breaker scopes, `loop`), who called."""

    id: str
    budgets: tuple[str, ...]
    key_id: str | None = None
    agent: str | None = None
    team: str | None = None
    timestamp: datetime = field(default_factory=_now)
    guards: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "override_used",
            "id": self.id,
            "budgets": list(self.budgets),
            "guards": list(self.guards),
            "key_id": self.key_id,
            "agent": self.agent,
            "team": self.team,
            "timestamp": self.timestamp.isoformat(),
        }
