"""The governor behind its store guard: a restarted memory store is rebuilt from the ledger before the first call,
each `on_store_loss` policy answers a lost store as it says, an unreachable store is answered within its timeout
(refused, or admitted under fail_open with the spend landing once the store answers), and the rebuild counts a
call settled across the loss exactly once."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fiscus.attribution import Attribution
from fiscus.errors import StoreUnavailable
from fiscus.events.store_events import BudgetStoreBack, BudgetStoreDown, BudgetStoreLost
from fiscus.governor import CallRequest, Governor
from fiscus.ledger import LedgerWriter, open_ledger
from fiscus.ledger.base import Ledger
from fiscus.money import to_nanos
from fiscus.policy import parse_policy
from fiscus.stores import BudgetStore, MemoryStore, open_store
from fiscus.stores.redis import RedisStore
from fiscus.usage import Usage

from ._support import T0, Clock, catalogue

DAY = {"name": "team-day", "scope": {"team": "growth"}, "window": "day", "limit": {"usd": "0.01"}}
KEY = "b:team-day|day:2026-06-09"


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = open_ledger(f"sqlite:///{tmp_path}/ledger.db")
    yield opened
    opened.close()


def build(store: BudgetStore, ledger: Ledger, policy: str = "rebuild", **kw: object) -> tuple[Governor, list[object]]:
    events: list[object] = []
    gov = Governor(
        policy=parse_policy({"budgets": [DAY]}),
        store=store,
        catalogue=catalogue(),
        ledger=LedgerWriter(ledger, outbox=store if store.durable else None, flush_interval=0.01),
        clock=kw.pop("clock", None) or Clock(),
        on_event=events.append,
        on_store_loss=policy,
        **kw,  # type: ignore[arg-type]
    )
    return gov, events


def request() -> CallRequest:
    return CallRequest(
        provider="local", model="big", attribution=Attribution(team="growth"), input_tokens=100, max_tokens=100
    )


def serve(gov: Governor, n: int) -> None:
    for _ in range(n):
        gov.settle(gov.admit(request()), Usage(input_tokens=100, output_tokens=100))  # $0.004 a call


def test_a_restarted_memory_store_is_rebuilt_from_the_ledger_before_the_first_call(ledger: Ledger) -> None:
    first, _ = build(MemoryStore(guarded=True), ledger)
    first.guard.start()
    serve(first, 2)  # $0.008 of $0.01
    first.close()
    again, events = build(MemoryStore(guarded=True), ledger)  # the restart: the memory store starts empty
    again.guard.start()
    spent = sum(to_nanos(e.cost.total) for e in ledger.events())
    assert again.store.counters((KEY,), now=T0)[KEY].spent.nanos == spent == 8_000_000
    assert [type(e) for e in events] == [BudgetStoreLost]
    assert not again.admit(request()).decision.calls_model  # the third call does not fit: the day holds
    again.close()


def test_a_fresh_store_with_an_empty_ledger_lost_nothing(ledger: Ledger) -> None:
    gov, events = build(MemoryStore(guarded=True), ledger, "fail_closed")
    assert gov.admit(request()).decision.calls_model
    assert events == []  # nothing announced: nothing was in the current windows
    gov.close()


@pytest.mark.parametrize("policy", ["rebuild", "fail_closed", "fail_open"])
def test_each_policy_answers_a_lost_store(policy: str, ledger: Ledger, tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/budgets.db", guarded=True)
    gov, events = build(store, ledger, policy)
    gov.guard.start()
    serve(gov, 2)
    assert gov.ledger.flush(5)  # type: ignore[union-attr]
    with store._transaction() as db:  # type: ignore[attr-defined]  # the counters table emptied
        db.execute("DELETE FROM fiscus_counters")
    if policy == "fail_open":
        assert gov.admit(request()).decision.calls_model  # admitted, on a budget counted from zero
    else:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) if policy == "fail_closed" else _nothing():
            admission = gov.admit(request())
            assert not admission.decision.calls_model  # rebuilt: the day's $0.008 is back, the call does not fit
        assert time.monotonic() - started < 1.0
    lost = [e for e in events if isinstance(e, BudgetStoreLost)]
    assert len(lost) == 1 and lost[0].policy == policy
    if policy == "fail_closed":
        with pytest.raises(StoreUnavailable, match="fiscus budgets rebuild"):
            gov.admit(request())
        from fiscus.stores.rebuild import rebuild_store

        restored, rebuilt = rebuild_store(gov.policy, store, ledger, now=T0)
        assert restored and rebuilt.counters[KEY][0].nanos == 8_000_000
        gov.guard._retry_at = 0.0  # as a second later
        assert not gov.admit(request()).decision.calls_model
    gov.close()


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


def test_a_call_settled_across_the_loss_counts_once(ledger: Ledger) -> None:
    store = MemoryStore(guarded=True)
    gov, _ = build(store, ledger)
    gov.guard.start()
    serve(gov, 1)
    running = gov.admit(request())  # in flight when the store loses its state
    forget(store)
    gov.settle(running, Usage(input_tokens=100, output_tokens=100))  # lands on the empty counters
    assert gov.ledger.flush(5)  # type: ignore[union-attr]
    assert not gov.admit(request()).decision.calls_model  # rebuilt from the ledger: $0.008, the next does not fit
    spent = sum(to_nanos(e.cost.total) for e in ledger.events())
    assert store.counters((KEY,), now=T0)[KEY].spent.nanos == spent == 8_000_000  # once, not twice
    gov.close()


def forget(store: MemoryStore) -> None:
    """What a restart does to a memory store, in place: every counter, lease and the marker gone."""
    with store._lock:
        store._cells.clear()
        store._live.clear()
        store._heap.clear()
        store._marker, store._intact = None, False


def nowhere() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{sock.getsockname()[1]}/0"  # nothing listens there once closed


@pytest.mark.parametrize("policy", ["rebuild", "fail_closed"])
def test_an_unreachable_store_is_refused_fast(policy: str, ledger: Ledger) -> None:
    gov, events = build(RedisStore.from_url(nowhere(), guarded=True, timeout_s=0.5), ledger, policy)
    for _ in range(3):
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="cannot be reached"):
            gov.admit(request())
        assert time.monotonic() - started < 1.0
    assert [type(e) for e in events] == [BudgetStoreDown]  # announced once
    gov.close()


def test_fail_open_admits_while_the_store_is_down_and_counts_the_spend_once_it_answers(
    ledger: Ledger, tmp_path: Path
) -> None:
    class Flaky(MemoryStore):
        down = False

        def _check(self) -> None:
            if self.down:
                from fiscus.errors import StoreUnreachable

                raise StoreUnreachable("memory store switched off for the test")

        def reserve(self, *args: object, **kw: object):  # type: ignore[no-untyped-def]
            self._check()
            return super().reserve(*args, **kw)  # type: ignore[arg-type]

        def settle(self, *args: object, **kw: object) -> str:
            self._check()
            return super().settle(*args, **kw)  # type: ignore[arg-type]

    store = Flaky(guarded=True)
    clock = Clock()
    gov, events = build(store, ledger, "fail_open", clock=clock, settle_journal=tmp_path / "journal")
    gov.guard.start()
    store.down = True
    admission = gov.admit(request())
    assert admission.decision.calls_model and admission.reservation is not None  # admitted, held nowhere
    event = gov.settle(admission, Usage(input_tokens=100, output_tokens=100))
    assert [type(e) for e in events] == [BudgetStoreDown]
    store.down = False
    assert gov.settle_retry is not None and gov.settle_retry.wait(timeout=5)
    assert store.counters((KEY,), now=T0)[KEY].spent.nanos == to_nanos(event.cost.total)  # counted once back
    clock.now += 2  # past the down state's retry
    assert gov.admit(request()).decision.calls_model
    assert [type(e) for e in events] == [BudgetStoreDown, BudgetStoreBack]
    gov.close()


def test_the_async_door_rebuilds_off_the_event_loop(ledger: Ledger) -> None:
    first, _ = build(MemoryStore(guarded=True), ledger)
    first.guard.start()
    serve(first, 2)
    first.close()
    again, events = build(MemoryStore(guarded=True), ledger)  # not started: the first call meets the loss

    async def run() -> bool:
        return (await again.aadmit(request())).decision.calls_model

    assert asyncio.run(run()) is False
    assert [type(e) for e in events if isinstance(e, BudgetStoreLost)] == [BudgetStoreLost]
    again.close()
