"""An emulator on loopback, governors over a parsed policy and a list ledger, and clients of both SDKs."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest

from fiscus.emulator import EmulatorConfig, run_in_thread
from fiscus.events.cost_event import CostEvent
from fiscus.governor import Governor
from fiscus.guards.registry import BreakerRegistry
from fiscus.policy.load import parse_policy
from fiscus.pricing.catalogue import PriceCatalogue
from fiscus.stores import open_store


class ListLedger:
    """Keeps every CostEvent in memory, in order (the LedgerWriter interface)."""

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


def make_governor(budgets: list[dict[str, Any]] | None = None, **extra: Any) -> tuple[Governor, ListLedger, list]:
    events: list[object] = []
    ledger = ListLedger()
    policy = parse_policy({"budgets": budgets or [], **extra})
    governor = Governor(
        policy=policy,
        store=open_store("memory://"),
        catalogue=PriceCatalogue(),
        ledger=ledger,
        on_event=events.append,
    )
    return governor, ledger, events


@pytest.fixture(scope="session")
def emulator_url() -> Iterator[str]:
    with run_in_thread(EmulatorConfig(reply_tokens=20)) as url:
        yield url


@pytest.fixture
def governed(tmp_path):
    """Factory: (governor, ledger, events, breakers) for a policy's budgets."""

    def build(budgets: list[dict[str, Any]] | None = None, **extra: Any):
        governor, ledger, events = make_governor(budgets, **extra)
        return governor, ledger, events, BreakerRegistry(postmortem_dir=tmp_path / "pm")

    return build


@pytest.fixture
def openai_client(emulator_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{emulator_url}/v1", api_key="sk-test", max_retries=0)


@pytest.fixture
def async_openai_client(emulator_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{emulator_url}/v1", api_key="sk-test", max_retries=0)


@pytest.fixture
def anthropic_client(emulator_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=emulator_url, api_key="sk-ant-test", max_retries=0)


@pytest.fixture
def async_anthropic_client(emulator_url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=emulator_url, api_key="sk-ant-test", max_retries=0)
