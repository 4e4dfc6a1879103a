"""Pinned prices and small builders for engine tests (no catalogue: the engine takes any sheet lookup)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fiscus.attribution import Attribution
from fiscus.engine import CallRequest, Engine
from fiscus.engine.ports import Amounts, Counter
from fiscus.policy import Policy, parse_policy
from fiscus.pricing.sheet import PriceSheet, Rate

PRICES = {  # USD per million tokens: input, output
    "claude-opus-4-1": ("15", "75"),
    "claude-sonnet-4-5": ("3", "15"),
    "claude-haiku-4-5": ("1", "5"),
}


def sheet(provider: str, model: str, batch: bool, now: float) -> PriceSheet:
    inp, out = PRICES[model]
    return PriceSheet(provider=provider, model=model, input=Rate(Decimal(inp)), output=Rate(Decimal(out)))


def engine(policy: dict[str, Any] | Policy) -> Engine:
    return Engine(policy if isinstance(policy, Policy) else parse_policy(policy), sheet)


def request(model: str = "claude-opus-4-1", **kw: Any) -> CallRequest:
    attribution = kw.pop("attribution", Attribution(team="growth", user="alice", session="s1"))
    kw.setdefault("input_tokens", 1000)
    kw.setdefault("max_tokens", 1000)
    return CallRequest(provider="anthropic", model=model, attribution=attribution, **kw)


def spent(usd: str) -> Counter:
    return Counter(spent=Amounts(nanos=int(Decimal(usd) * 1_000_000_000)))
