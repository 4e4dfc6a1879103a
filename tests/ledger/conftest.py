"""Ledger fixtures: one parametrised `ledger_url` over every backend, and an event factory."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fiscus.attribution import Attribution
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.ledger import Ledger, open_ledger
from fiscus.pricing.cost import Cost
from fiscus.usage.model import Usage

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ledger/ledger.db"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    led = open_ledger(ledger_url)
    yield led
    led.close()


EventFactory = Callable[..., CostEvent]


@pytest.fixture
def make_event() -> EventFactory:
    counter = itertools.count()

    def make(
        *,
        at: datetime | None = None,
        cost: str = "0.001",
        status: CallStatus = CallStatus.OK,
        model: str = "gpt-4o-mini",
        provider: str = "openai",
        usage: Usage | None = None,
        fallback: bool = False,
        **dims: Any,
    ) -> CostEvent:
        n = next(counter)
        return CostEvent(
            id=f"evt-{n:06d}",
            timestamp=at or T0 + timedelta(seconds=n),
            provider=provider,
            requested_model=model,
            served_model=model,
            usage=usage or Usage(input_tokens=100, cache_read_tokens=50, output_tokens=20),
            cost=Cost(input=Decimal(cost), fallback_price=fallback),
            attribution=Attribution(**dims),
            status=status,
        )

    return make
