"""`Override`: one grant — for a key (every overridable budget its calls fall under) or for a budget (every
caller) — with its reason, who granted it and until when."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from fiscus.errors import FiscusError

EVERY_BUDGET = "*"  # what a key's override covers: every budget the policy marks overridable


class OverrideError(FiscusError):
    """An override that cannot be granted as asked (no target, no reason, an expiry in the past…)."""


class OverrideNotFoundError(FiscusError):
    """No override has the given id."""


def new_override_id() -> str:
    return "ov_" + secrets.token_hex(6)


@dataclass(frozen=True, slots=True)
class Override:
    """Exactly one of `key_id` and `budget` is set."""

    id: str
    reason: str
    created_at: datetime
    expires_at: datetime
    key_id: str | None = None
    budget: str | None = None
    granted_by: str | None = None
    revoked_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and self.created_at <= now < self.expires_at

    def grant(self) -> tuple[str, str]:
        """(budget name or `EVERY_BUDGET`, id): what a call this override covers carries to the engine."""
        return (self.budget or EVERY_BUDGET, self.id)

    @property
    def target(self) -> str:
        return f"key {self.key_id}" if self.key_id else f"budget {self.budget}"

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.active(now) else "expired"

    def to_dict(self) -> dict[str, str | None]:
        return {
            "id": self.id,
            "key_id": self.key_id,
            "budget": self.budget,
            "reason": self.reason,
            "granted_by": self.granted_by,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }
