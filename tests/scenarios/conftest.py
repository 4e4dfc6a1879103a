"""Scenario fixtures: the emulator, a simulated clock shared by the governor and the breakers, a list ledger."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import openai
import pytest

from fiscus.emulator import EmulatorConfig, run_in_thread
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.governor import Governor
from fiscus.guards.breaker import BreakerConfig
from fiscus.guards.registry import BreakerRegistry
from fiscus.policy.load import parse_policy
from fiscus.pricing.catalogue import PriceCatalogue
from fiscus.stores import open_store

SATURDAY = 1_767_398_400.0  # 2026-01-03 00:00 UTC, a Saturday


class SimClock:
    def __init__(self, now: float = SATURDAY) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Ledger:
    def __init__(self) -> None:
        self.events: list[CostEvent] = []

    def submit(self, event: CostEvent) -> None:
        self.events.append(event)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def spent(self) -> Decimal:
        return sum((e.total_usd for e in self.events), Decimal(0))

    def provider_calls(self) -> int:
        return sum(e.status is CallStatus.OK for e in self.events)


class World:
    def __init__(self, base_url: str, tmp_path: Any, budgets: list[dict[str, Any]]) -> None:
        self.clock = SimClock()
        self.ledger = Ledger()
        self.events: list[object] = []
        self.governor = Governor(
            policy=parse_policy({"budgets": budgets}),
            store=open_store("memory://"),
            catalogue=PriceCatalogue(),
            ledger=self.ledger,
            clock=self.clock,
            on_event=self.events.append,
        )
        self.breakers = BreakerRegistry(
            BreakerConfig(cooldown_s=600), clock=self.clock, postmortem_dir=tmp_path / "postmortems"
        )
        self.client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="sk-test", max_retries=0)


@pytest.fixture(scope="session")
def emulator_url() -> Iterator[str]:
    with run_in_thread(EmulatorConfig(reply_tokens=30)) as url:
        yield url


@pytest.fixture
def world(emulator_url, tmp_path):
    def build(budgets: list[dict[str, Any]] | None = None) -> World:
        return World(emulator_url, tmp_path, budgets or [])

    return build
