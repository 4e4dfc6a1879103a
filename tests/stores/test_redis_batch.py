"""Concurrent async reserves and settles of one event loop ride one script call (lua/batch.lua): each runs as if
alone, in order, and fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest
from redis.exceptions import ResponseError

from fiscus.errors import StoreError
from fiscus.stores import Amounts, Counter, Limits, Refusal, Reservation, ReserveLine, SettleOutcome, open_store
from fiscus.stores.redis import MAX_EXACT, RedisStore

from .test_redis_store import forget_scripts

pytestmark = pytest.mark.redis
T0 = 1_800_000_000.0


class CountingTransport:
    """Stands between the coalescer and the connection, counting the script calls that ran (not those refused
    for want of the script: another test may flush it at any moment) and those refused."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0
        self.refused = 0

    async def call(self, payload: bytes) -> Any:
        try:
            reply = await self.inner.call(payload)
        except ResponseError:
            self.refused += 1
            raise
        self.calls += 1
        return reply


@pytest.fixture
async def store(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisStore]:
    opened = open_store(f"{redis_url}?prefix={redis_prefix}")
    assert isinstance(opened, RedisStore)
    yield opened
    await opened.aclose()


def counting(store: RedisStore) -> CountingTransport:
    store._async_transport()
    coalescer = store._coalescer
    assert coalescer is not None
    spy = CountingTransport(coalescer._transport)
    coalescer._transport = spy
    return spy


async def outcomes(*calls: Awaitable[Any]) -> list[Any]:
    return await asyncio.gather(*calls, return_exceptions=True)


def line(key: str, amount: int, limit: int | None = None) -> tuple[ReserveLine, ...]:
    return (ReserveLine("b", (key,), Limits(nanos=limit), Amounts(amount, 1, 1), expires_at=T0 + 3600),)


async def test_operations_of_one_turn_share_one_call_and_run_in_order(store: RedisStore) -> None:
    earlier = await store.areserve("r0", line("k", 10, 100), now=T0, lease_seconds=30)
    assert isinstance(earlier, Reservation)
    spy = counting(store)
    results = await outcomes(
        store.areserve("r1", line("k", 60, 100), now=T0, lease_seconds=30),  # 10 + 60 fits
        store.areserve("r2", line("k", 60, 100), now=T0, lease_seconds=30),  # 70 + 60 does not
        store.areserve("r1", line("k", 60, 100), now=T0, lease_seconds=30),  # a retry: r1 stands, once
        store.asettle(earlier, Amounts(4, 1, 1), now=T0),
        store.asettle(earlier, Amounts(4, 1, 1), now=T0),  # a retried settle
        store.areserve("r0", line("k", 1, 100), now=T0, lease_seconds=30),  # a settled id is not reused
        store.areserve("r3", line("k", 30, 100), now=T0, lease_seconds=30),  # 4 + 60 + 30 fits after the settle
    )
    assert spy.calls == 1
    first, refused, again, settled, duplicate, reused, last = results
    assert isinstance(first, Reservation) and again == first
    assert isinstance(refused, Refusal) and refused.used == Amounts(70, 2, 2)
    assert (settled, duplicate) == (SettleOutcome.SETTLED, SettleOutcome.DUPLICATE)
    assert isinstance(reused, StoreError) and "already settled" in str(reused)
    assert isinstance(last, Reservation)
    counters = await store.acounters(("k",), now=T0)
    assert counters["k"] == Counter(Amounts(4, 1, 1), Amounts(90, 2, 2))


async def test_an_operation_past_the_exact_range_fails_alone(store: RedisStore) -> None:
    big = MAX_EXACT - 5
    held = await store.areserve("big", line("k", 1), now=T0, lease_seconds=30)
    assert isinstance(held, Reservation)
    assert await store.asettle(held, Amounts(big), now=T0) == SettleOutcome.SETTLED
    victim = await store.areserve("victim", line("k", 1), now=T0, lease_seconds=30)
    other = await store.areserve("other", line("j", 1), now=T0, lease_seconds=30)
    assert isinstance(victim, Reservation) and isinstance(other, Reservation)
    spy = counting(store)
    results = await outcomes(
        store.asettle(other, Amounts(2, 1, 1), now=T0),
        store.asettle(victim, Amounts(10), now=T0),  # spent would pass 2**53 - 1: refused, nothing changes
        store.areserve("next", line("j", 3), now=T0, lease_seconds=30),
    )
    assert spy.calls == 1
    assert results[0] == SettleOutcome.SETTLED
    assert isinstance(results[1], StoreError) and "would pass 2**53-1" in str(results[1])
    assert isinstance(results[2], Reservation)
    counters = await store.acounters(("k", "j"), now=T0)
    assert counters["k"] == Counter(Amounts(big), Amounts(1, 1, 1))  # the victim still holds its reservation
    assert counters["j"] == Counter(Amounts(2, 1, 1), Amounts(3, 1, 1))
    assert await store.asettle(victim, Amounts(1), now=T0) == SettleOutcome.SETTLED


async def test_a_batch_reaps_an_expired_lease_and_a_late_settle_after_it_still_counts(store: RedisStore) -> None:
    stale = await store.areserve("stale", line("k", 100, 100), now=T0, lease_seconds=10)
    assert isinstance(stale, Reservation)
    later = T0 + 20
    spy = counting(store)
    results = await outcomes(
        store.areserve("fresh", line("k", 100, 100), now=later, lease_seconds=30),  # fits once "stale" is reaped
        store.asettle(stale, Amounts(7, 1, 1), now=later),  # its lease had run out: late, the spend still counts
        store.areserve("third", line("k", 1, 100), now=later, lease_seconds=30),  # 100 + 7 + 1 > 100
    )
    assert spy.calls == 1
    assert isinstance(results[0], Reservation)
    assert results[1] == SettleOutcome.LATE
    assert isinstance(results[2], Refusal)
    counters = await store.acounters(("k",), now=later)
    assert counters["k"] == Counter(Amounts(7, 1, 1), Amounts(100, 1, 1))


@pytest.mark.parametrize("functions", [True, False])
async def test_a_batch_loads_its_script_again_after_a_flush(redis_url: str, redis_prefix: str, functions: bool) -> None:
    store = open_store(f"{redis_url}?prefix={redis_prefix}", functions=functions)
    assert isinstance(store, RedisStore)
    try:
        assert isinstance(await store.areserve("r0", line("k", 1), now=T0, lease_seconds=30), Reservation)
        forget_scripts(redis_url)
        spy = counting(store)
        results = await outcomes(
            *(store.areserve(f"r{i}", line("k", 1, 5), now=T0, lease_seconds=30) for i in range(1, 9))
        )
        assert sum(isinstance(r, Reservation) for r in results) == 4
        assert spy.calls >= 1  # (refused for want of the script first, unless another test loaded it meanwhile)
        assert (await store.acounters(("k",), now=T0))["k"].reserved == Amounts(5, 5, 5)
    finally:
        await store.aclose()


async def test_many_keys_are_split_over_several_calls(store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fiscus.stores.redis_coalesce.MAX_KEYS", 10)
    rolling = tuple(f"w|{bucket}" for bucket in range(4))  # a rolling window's live buckets
    request = (ReserveLine("b", rolling, Limits(nanos=6), Amounts(1)),)
    await store.areserve("first", line("other", 0), now=T0, lease_seconds=30)  # a fresh prefix gets its marker
    spy = counting(store)
    results = await outcomes(*(store.areserve(f"r{i}", request, now=T0, lease_seconds=30) for i in range(8)))
    assert spy.calls == 4  # five keys an operation (its record and four buckets): two operations a call
    assert sum(isinstance(r, Reservation) for r in results) == 6  # the limit holds across the calls
