"""`BreakerRecord`: one breaker's state as processes share it (a store row, a Redis hash field, a JSON line)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from fiscus.errors import StoreError

STATES = ("open", "closed")  # half-open is derived from `reopens_at`, never recorded


@dataclass(frozen=True, slots=True)
class BreakerRecord:
    """`since`: epoch seconds of the trip or close it records, the newest wins. `reopens_at`: the end of the
    cooldown of an open breaker. `trips`: how many times the writing process has seen it trip."""

    scope: str
    state: str
    since: float
    reason: str | None = None
    message: str | None = None
    reopens_at: float | None = None
    trips: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        body = asdict(self)
        body["state"] = str(self.state)
        return json.dumps(body, separators=(",", ":"), default=str, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> BreakerRecord:
        try:
            body = json.loads(text)
            record = cls(**body)
        except (ValueError, TypeError) as exc:
            raise StoreError(f"unreadable breaker record: {exc}") from None
        if record.state not in STATES:
            raise StoreError(f"breaker record for {record.scope!r} has unknown state {record.state!r}")
        return record
