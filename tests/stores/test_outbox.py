"""The outbox on every store: a settle keeps the call's record in the same atomic step, once per id."""

from __future__ import annotations

import asyncio

from fiscus.stores import Amounts, BudgetStore, Limits, Reservation, ReserveLine, SettleOutcome

T0 = 1_800_000_000.0
LEASE = 30.0


def reserve(store: BudgetStore, rid: str) -> Reservation:
    line = ReserveLine("b", ("k",), Limits(nanos=1000), Amounts(100), expires_at=T0 + 86400)
    result = store.reserve(rid, (line,), now=T0, lease_seconds=LEASE)
    assert isinstance(result, Reservation)
    return result


def test_a_settle_with_a_record_puts_it_in_the_outbox_once(store: BudgetStore) -> None:
    first, second = reserve(store, "r1"), reserve(store, "r2")
    assert store.settle(first, Amounts(40), now=T0, record=b'{"id":"r1"}') == SettleOutcome.SETTLED
    assert store.settle(first, Amounts(40), now=T0, record=b'{"id":"r1"}') == SettleOutcome.DUPLICATE
    store.settle(second, Amounts(10), now=T0)  # no record: nothing in the outbox
    store.record("refused-1", b'{"id":"refused-1"}')
    entries = store.outbox(10)
    assert [(e.id, e.record) for e in entries] == [("r1", b'{"id":"r1"}'), ("refused-1", b'{"id":"refused-1"}')]
    assert store.outbox(1)[0].id == "r1"  # oldest first, as many as asked
    store.outbox_done(entries[:1])
    assert [e.id for e in store.outbox(10)] == ["refused-1"]
    store.outbox_done(store.outbox(10))
    assert store.outbox(10) == []
    assert store.counters(("k",), now=T0)["k"].spent == Amounts(50)


def test_the_async_settle_and_record_fill_the_outbox_too(store: BudgetStore) -> None:
    reservation = reserve(store, "a1")

    async def run() -> None:
        assert await store.asettle(reservation, Amounts(5), now=T0, record=b"one") == SettleOutcome.SETTLED
        await store.arecord("a2", b"two")
        assert sorted((e.id, e.record) for e in store.outbox(10)) == [("a1", b"one"), ("a2", b"two")]
        await store.aclose()

    asyncio.run(run())


def test_a_record_survives_the_store_being_opened_again(store_url: str) -> None:
    from fiscus.stores import open_store

    first = open_store(store_url)
    if not first.durable:
        first.close()
        return  # memory: nothing outlives the process, and the governor does not record through it
    first.settle(reserve(first, "d1"), Amounts(7), now=T0, record=b"kept")
    first.close()
    again = open_store(store_url)
    try:
        assert [(e.id, e.record) for e in again.outbox(10)] == [("d1", b"kept")]
    finally:
        again.close()
