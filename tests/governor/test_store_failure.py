"""Money spent is recorded even when the budget store fails at settle time."""

from __future__ import annotations

import asyncio

import pytest

from fiscus.attribution import Attribution
from fiscus.errors import StoreError
from fiscus.governor import CallRequest
from fiscus.stores.memory import MemoryStore
from fiscus.usage import Usage

from ._support import governor

TEAM = {"name": "team", "scope": {"team": "growth"}, "window": "day", "limit": {"usd": 1}}


class FailingSettle(MemoryStore):
    def settle(self, *args: object, **kwargs: object) -> str:
        raise StoreError("budget store unreachable")


def request() -> CallRequest:
    return CallRequest(
        provider="local", model="big", attribution=Attribution(team="growth"), input_tokens=100, max_tokens=100
    )


def test_a_failed_store_settle_still_records_the_event() -> None:
    gov, _, ledger, _ = governor({"budgets": [TEAM]}, store=FailingSettle())
    admission = gov.admit(request())
    with pytest.raises(StoreError):
        gov.settle(admission, Usage(input_tokens=100, output_tokens=50))
    assert [event.id for event in ledger.events] == [admission.event_id]
    assert ledger.events[0].cost.total > 0


def test_a_failed_async_store_settle_still_records_the_event() -> None:
    gov, _, ledger, _ = governor({"budgets": [TEAM]}, store=FailingSettle())

    async def run() -> None:
        admission = await gov.aadmit(request())
        with pytest.raises(StoreError):
            await gov.asettle(admission, Usage(input_tokens=100, output_tokens=50))

    asyncio.run(run())
    assert len(ledger.events) == 1
