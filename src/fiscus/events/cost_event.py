"""`CostEvent`: the record of one call — what it was, who it was for, what it used and cost."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from fiscus.attribution import Attribution
from fiscus.pricing.cost import Cost
from fiscus.usage.model import Usage


class CallStatus(StrEnum):
    OK = "ok"
    ERROR = "error"
    BLOCKED = "blocked"
    PARTIAL = "partial"


def new_event_id() -> str:
    """Time-ordered unique id (UUIDv7 layout: 48-bit Unix milliseconds, version 7, 74 random bits, RFC 4122
    variant), so ledger rows cluster by time. Built as text, the millisecond part once per millisecond: it runs
    once per call on the hot path. The random bits come from `random`, seeded from the OS at start and reseeded
    in a forked child, so processes never share a sequence."""
    global _prefix
    ms = time.time_ns() // 1_000_000
    prefix = _prefix
    if prefix[0] != ms:
        digits = f"{ms:012x}"
        prefix = _prefix = (ms, f"{digits[:8]}-{digits[8:]}-7")  # one tuple: threads never see half of it
    rand = f"{_random_bits(76) & _VARIANT_MASK | _VARIANT:019x}"  # 12 bits, then 10 and 62 bits
    return f"{prefix[1]}{rand[:3]}-{rand[3:7]}-{rand[7:]}"


_prefix: tuple[int, str] = (-1, "")
_random_bits = random.getrandbits
_VARIANT_MASK = ~(0b11 << 62)
_VARIANT = 0b10 << 62  # the two variant bits, top of the last 64


@dataclass(slots=True)
class CostEvent:
    """One priced, attributed call. Immutable by convention (one is built per call, and a frozen dataclass costs
    several times as much to build); the ledger keeps it once per `id`, however often it is written.

    `requested_model` is what the caller asked for, `served_model` what answered (they differ after a
    downgrade or fallback). A blocked or partial call that never reached a provider has zero usage and cost.
    """

    provider: str
    requested_model: str
    served_model: str
    usage: Usage
    cost: Cost
    attribution: Attribution = field(default_factory=Attribution)
    status: CallStatus = CallStatus.OK
    id: str = field(default_factory=new_event_id)
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))
    model_tier: str | None = None
    latency_ms: int | None = None
    batch: bool = False
    streamed: bool = False
    error: str | None = None
    decision: str | None = None  # the budget action that shaped the call, e.g. "downgrade"
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def cache_hit_ratio(self) -> Decimal:
        return self.usage.cache_hit_ratio

    @property
    def total_usd(self) -> Decimal:
        return self.cost.total

    def with_attribution(self, attribution: Attribution) -> CostEvent:
        return replace(self, attribution=attribution)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict: decimals as strings, timestamp as ISO 8601."""
        return {
            "id": self.id,
            "timestamp": self.timestamp.isoformat(),
            "provider": self.provider,
            "requested_model": self.requested_model,
            "served_model": self.served_model,
            "model_tier": self.model_tier,
            "status": str(self.status),
            "usage": self.usage.to_dict(),
            "cost": self.cost.to_dict(),
            "cache_hit_ratio": format(self.cache_hit_ratio.quantize(Decimal("0.0001")), "f"),
            "latency_ms": self.latency_ms,
            "batch": self.batch,
            "streamed": self.streamed,
            "error": self.error,
            "decision": self.decision,
            "attribution": self.attribution.to_dict(),
            "tags": dict(self.tags),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CostEvent:
        ts = datetime.fromisoformat(data["timestamp"])
        return cls(
            id=data["id"],
            timestamp=ts if ts.tzinfo else ts.replace(tzinfo=UTC),
            provider=data["provider"],
            requested_model=data["requested_model"],
            served_model=data["served_model"],
            model_tier=data.get("model_tier"),
            status=CallStatus(data.get("status", "ok")),
            usage=Usage.from_dict(data.get("usage", {})),
            cost=Cost.from_dict(data.get("cost", {})),
            latency_ms=data.get("latency_ms"),
            batch=bool(data.get("batch", False)),
            streamed=bool(data.get("streamed", False)),
            error=data.get("error"),
            decision=data.get("decision"),
            attribution=Attribution.from_dict(data.get("attribution", {})),
            tags=dict(data.get("tags") or {}),
        )
