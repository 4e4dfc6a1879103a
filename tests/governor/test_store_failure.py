"""A settle the budget store fails after the call was served is kept and retried until it lands: the call is
recorded once in the ledger and the counters catch up, also across a restart (the journal)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from fiscus.attribution import Attribution
from fiscus.errors import StoreError
from fiscus.governor import CallRequest
from fiscus.meters import Amounts
from fiscus.stores.memory import MemoryStore
from fiscus.stores.settle_retry import SettleRetry
from fiscus.usage import Usage

from ._support import T0, governor

TEAM = {"name": "team", "scope": {"team": "growth"}, "window": "day", "limit": {"usd": 1}}
KEY = "b:team:day:2026-06-09"


class FlakySettle(MemoryStore):
    """Fails the first `failures` settles (a Redis blip), then works."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.calls = 0
        self._guard = threading.Lock()

    def settle(self, *args: object, **kwargs: object) -> str:
        with self._guard:
            self.calls += 1
            if self.calls <= self.failures:
                raise StoreError("budget store unreachable")
        return super().settle(*args, **kwargs)  # type: ignore[arg-type]


def request() -> CallRequest:
    return CallRequest(
        provider="local", model="big", attribution=Attribution(team="growth"), input_tokens=100, max_tokens=100
    )


def spent(store: MemoryStore) -> Amounts:
    key = next(k for k in store._cells if k.startswith("b:team"))
    return store.counters((key,), now=T0)[key].spent


def test_a_failed_settle_is_recorded_once_and_retried_until_it_lands() -> None:
    store = FlakySettle(failures=3)
    gov, _, ledger, _ = governor({"budgets": [TEAM]}, store=store)
    admission = gov.admit(request())
    event = gov.settle(admission, Usage(input_tokens=100, output_tokens=50))  # no error: the call was served
    assert [e.id for e in ledger.events] == [admission.event_id]
    assert gov.settle_retry is not None and gov.settle_retry.wait(timeout=5)
    assert store.calls == 4  # three failures, then it landed
    assert spent(store).nanos == 2_500_000 == int(event.cost.total * 10**9)
    assert spent(store).requests == 1


def test_a_failed_async_settle_is_retried_too() -> None:
    store = FlakySettle(failures=1)
    gov, _, ledger, _ = governor({"budgets": [TEAM]}, store=store)

    async def run() -> None:
        admission = await gov.aadmit(request())
        await gov.asettle(admission, Usage(input_tokens=100, output_tokens=50))

    asyncio.run(run())
    assert len(ledger.events) == 1
    assert gov.settle_retry is not None and gov.settle_retry.wait(timeout=5)
    assert spent(store).requests == 1


def test_pending_settles_survive_a_restart_through_the_journal(tmp_path: Path) -> None:
    journal = tmp_path / "settle-retry"
    down = FlakySettle(failures=10**9)
    gov, _, _, _ = governor({"budgets": [TEAM]}, store=down, settle_journal=journal)
    admission = gov.admit(request())
    gov.settle(admission, Usage(input_tokens=100, output_tokens=50))
    assert gov.settle_retry is not None and gov.settle_retry.pending == 1
    gov.settle_retry.close()  # the process ends with the store still down
    assert list(tmp_path.glob("settle-retry.*.jsonl"))

    store = MemoryStore()  # the store is back; a new process starts on the same journal
    store.reserve(admission.reservation.id, admission.reservation.lines, now=T0, lease_seconds=120)  # type: ignore[union-attr]
    retry = SettleRetry(store, journal)
    try:
        assert retry.wait(timeout=5) and retry.landed == 1
    finally:
        retry.close()
    assert spent(store).nanos == 2_500_000
    assert spent(store).tokens == 150
    assert not list(tmp_path.glob("settle-retry.*.jsonl"))
