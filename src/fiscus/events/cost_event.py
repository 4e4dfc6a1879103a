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
from fiscus.events.savings import Savings
from fiscus.pricing.cost import Cost
from fiscus.usage.model import Usage


class CallStatus(StrEnum):
    OK = "ok"
    ERROR = "error"
    BLOCKED = "blocked"
    PARTIAL = "partial"
    CACHE_HIT = "cache_hit"  # answered from the exact response cache: no provider called, nothing billed


def new_event_id() -> str:
    """Time-ordered unique id (UUIDv7 layout: 48-bit Unix milliseconds, version 7, 12 random bits drawn once per
    millisecond, RFC 4122 variant, 62 random bits per id), so ledger rows cluster by time. Built as text, with
    everything but the last 16 hex digits formatted once per millisecond: it runs once per call. The random bits
    come from `random` (seeded from the OS, and again in a forked child), a third of the cost of `os.urandom`."""
    global _prefix
    ms = time.time_ns() // 1_000_000
    prefix = _prefix
    if prefix[0] != ms:
        digits = f"{ms:012x}"
        prefix = _prefix = (ms, f"{digits[:8]}-{digits[8:]}-7{_bits(12):03x}-")  # one tuple: atomic
    tail = f"{_VARIANT | _bits(62):016x}"
    return f"{prefix[1]}{tail[:4]}-{tail[4:]}"


_prefix: tuple[int, str] = (-1, "")
_bits = random.getrandbits
_VARIANT = 0b10 << 62  # RFC 4122 variant bits over the 62 random ones


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
    # What the call would have cost ungoverned and what each lever saved (`fiscus.events.savings`); None when
    # unknown, and always for refused or partial work, which is never a saving.
    ungoverned_usd: Decimal | None = None
    saved: Savings | None = None
    policy_version: str | None = None  # the version of the policy that decided the call (`Policy.version`)

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
            "status": self.status.value,
            "usage": self.usage.to_dict(),
            "cost": self.cost.to_dict(),
            "cache_hit_ratio": _ratio(self.usage),
            "latency_ms": self.latency_ms,
            "batch": self.batch,
            "streamed": self.streamed,
            "error": self.error,
            "decision": self.decision,
            "attribution": self.attribution.to_dict(),
            "tags": dict(self.tags),
            "ungoverned_usd": None if self.ungoverned_usd is None else str(self.ungoverned_usd),
            "saved": None if self.saved is None else self.saved.to_dict(),
            "policy_version": self.policy_version,
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
            status=_STATUS.get(data.get("status", "ok")) or CallStatus(data["status"]),
            usage=Usage.from_dict(data.get("usage", {})),
            cost=Cost.from_dict(data.get("cost", {})),
            latency_ms=data.get("latency_ms"),
            batch=bool(data.get("batch", False)),
            streamed=bool(data.get("streamed", False)),
            error=data.get("error"),
            decision=data.get("decision"),
            attribution=Attribution.from_dict(data.get("attribution", {})),
            tags=dict(data.get("tags") or {}),
            ungoverned_usd=None if data.get("ungoverned_usd") is None else Decimal(data["ungoverned_usd"]),
            saved=Savings.from_dict(data["saved"]) if data.get("saved") else None,
            policy_version=data.get("policy_version"),
        )


_STATUS = {status.value: status for status in CallStatus}  # a dict read, not an enum call, per record read
_RATIO_PLACES = Decimal("0.0001")


def _ratio(usage: Usage) -> str:
    """The cache hit ratio as `to_dict` writes it; "0.0000" without a cache read (most calls) at no division."""
    if not usage.cache_read_tokens:
        return "0.0000"
    return format(usage.cache_hit_ratio.quantize(_RATIO_PLACES), "f")


def detail_tags(usage: Usage, cost: Cost) -> dict[str, str]:
    """Tags that keep, on the ledger row, what its counts alone do not say: how an estimate was made, whose figure
    the cost is, which server tools ran and which billed passes the call made."""
    detail = usage.detail
    tags: dict[str, str] = {}
    if detail is None:
        return tags
    if usage.estimated and detail.estimate:
        tags["usage_estimate"] = detail.estimate
    if cost.provider_reported:
        tags["cost_source"] = "provider"  # the provider's own usage.cost, not the catalogue's price
    if detail.server_tools:
        tags["server_tools"] = ",".join(f"{unit}={n}" for unit, n in detail.server_tools)
    if detail.iterations:
        tags["iterations"] = ",".join(f"{it.kind}@{it.model}" if it.model else it.kind for it in detail.iterations)
    return tags
