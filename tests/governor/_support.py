"""A governor on a memory store, a simulated clock and pinned prices; a list stands in for the ledger."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fiscus.events import CostEvent
from fiscus.governor import Governor
from fiscus.policy import parse_policy
from fiscus.pricing import ModelOverride, PriceCatalogue, PricingConfig
from fiscus.stores import MemoryStore

T0 = 1_781_000_000.0  # 2026-06-09, a Tuesday


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class ListLedger:
    events: list[CostEvent] = field(default_factory=list)
    flushed: bool = False

    def submit(self, event: CostEvent) -> None:
        self.events.append(event)

    def flush(self) -> None:
        self.flushed = True

    def close(self) -> None:
        self.flush()


def catalogue() -> PriceCatalogue:
    models = [
        ModelOverride(provider="local", model="big", input_mtok=Decimal(10), output_mtok=Decimal(30)),
        ModelOverride(provider="local", model="small", input_mtok=Decimal(1), output_mtok=Decimal(3)),
    ]
    return PriceCatalogue(PricingConfig(models=models))


def governor(policy: dict[str, Any], **kw: Any) -> tuple[Governor, Clock, ListLedger, list[object]]:
    clock, ledger, events = Clock(), ListLedger(), []
    # No margin on the input estimate: these tests reason in exact worst cases (the margin has tests of its own)
    policy = {"ladders": {"local": ["big", "small"]}, "estimate_margin": 0, **policy}
    gov = Governor(
        policy=parse_policy(policy),
        store=kw.pop("store", None) or MemoryStore(),
        catalogue=catalogue(),
        ledger=ledger,
        clock=clock,
        on_event=events.append,
        **kw,
    )
    return gov, clock, ledger, events
