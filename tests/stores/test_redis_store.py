"""What only the Redis store has: key layout, TTLs, script reloading, the exact-integer bound, error mapping."""

from __future__ import annotations

import asyncio

import pytest
import redis
from redis.crc import key_slot

from fiscus.errors import StoreError
from fiscus.stores import Amounts, Limits, Reservation, ReserveLine, SettleOutcome, open_store
from fiscus.stores.redis import MAX_EXACT, RedisStore

pytestmark = pytest.mark.redis
T0 = 1_800_000_000.0


@pytest.fixture
def store(redis_url: str, redis_prefix: str) -> RedisStore:
    opened = open_store(f"{redis_url}?prefix={redis_prefix}")
    assert isinstance(opened, RedisStore)
    yield opened
    opened.close()


def test_every_key_shares_the_prefix_hash_tag(store: RedisStore, redis_url: str, redis_prefix: str) -> None:
    request = (ReserveLine("b", ("k1", "k0"), Limits(), Amounts(5, 1, 1), expires_at=T0 + 3600),)
    reservation = store.reserve("r1", request, now=T0, lease_seconds=30)
    assert isinstance(reservation, Reservation)
    store.settle(reservation, Amounts(5), now=T0)
    store.reserve("r2", request, now=T0, lease_seconds=30)
    client = redis.Redis.from_url(redis_url)
    keys = sorted(k.decode() for k in client.scan_iter(match=f"*{redis_prefix}*"))
    names = ("c:k1", "expiry", "index", "leases", "records", "s:r1")
    assert keys == sorted(f"{{{redis_prefix}}}:{name}" for name in names)
    assert len({key_slot(k.encode()) for k in keys}) == 1  # one Redis Cluster slot
    # a counter lives until its window ends plus the margin, measured from the caller's clock
    ttl = client.ttl(f"{{{redis_prefix}}}:c:k1")
    assert 3600 + 86400 - 5 <= ttl <= 3600 + 86400
    assert 0 < client.ttl(f"{{{redis_prefix}}}:s:r1") <= 86400
    client.close()


def test_counter_without_expiry_gets_no_ttl(store: RedisStore, redis_url: str, redis_prefix: str) -> None:
    store.reserve("r1", (ReserveLine("b", ("forever",), Limits(), Amounts(1)),), now=T0, lease_seconds=30)
    client = redis.Redis.from_url(redis_url)
    assert client.ttl(f"{{{redis_prefix}}}:c:forever") == -1
    client.close()


def test_scripts_are_reloaded_after_a_flush(store: RedisStore, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.script_flush()
    client.close()
    reservation = store.reserve("r1", (ReserveLine("b", ("k",), Limits(), Amounts(1)),), now=T0, lease_seconds=30)
    assert isinstance(reservation, Reservation)
    assert store.settle(reservation, Amounts(1), now=T0) == SettleOutcome.SETTLED


async def test_concurrent_async_calls_share_pipelines_and_survive_a_flush(redis_url: str, redis_prefix: str) -> None:
    store = open_store(f"{redis_url}?prefix={redis_prefix}")
    client = redis.Redis.from_url(redis_url)
    client.script_flush()
    client.close()
    request = (ReserveLine("b", ("k",), Limits(nanos=50), Amounts(1)),)
    try:
        results = await asyncio.gather(*(store.areserve(f"r{i}", request, now=T0, lease_seconds=30) for i in range(80)))
        granted = [r for r in results if isinstance(r, Reservation)]
        assert len(granted) == 50  # the limit holds across pipelined scripts
        outcomes = await asyncio.gather(*(store.asettle(r, Amounts(1), now=T0) for r in granted))
        assert outcomes == [SettleOutcome.SETTLED] * 50
        assert (await store.acounters(("k",), now=T0))["k"].spent == Amounts(50)
    finally:
        await store.aclose()


def test_amounts_near_two_to_the_53_stay_exact(store: RedisStore) -> None:
    big = MAX_EXACT - 1
    request = (ReserveLine("b", ("k",), Limits(nanos=MAX_EXACT), Amounts(big)),)
    reservation = store.reserve("r1", request, now=T0, lease_seconds=30)
    assert isinstance(reservation, Reservation)
    assert store.settle(reservation, Amounts(big), now=T0) == SettleOutcome.SETTLED
    assert store.counters(("k",), now=T0)["k"].spent == Amounts(big)
    one_more = (ReserveLine("b", ("k",), Limits(nanos=MAX_EXACT), Amounts(1)),)
    assert isinstance(store.reserve("r2", one_more, now=T0, lease_seconds=30), Reservation)
    assert not isinstance(store.reserve("r3", one_more, now=T0, lease_seconds=30), Reservation)


def test_amounts_beyond_exact_range_are_refused(store: RedisStore) -> None:
    with pytest.raises(StoreError, match=r"2\*\*53"):
        store.reserve("r1", (ReserveLine("b", ("k",), Limits(), Amounts(MAX_EXACT + 1)),), now=T0, lease_seconds=30)


def test_unreachable_server_is_a_one_line_store_error() -> None:
    store = open_store("redis://127.0.0.1:1/0?prefix=nowhere")
    with pytest.raises(StoreError, match=r"^Redis store \(redis at 127.0.0.1:1/0\): ") as caught:
        store.reserve("r1", (ReserveLine("b", ("k",), Limits(), Amounts(1)),), now=T0, lease_seconds=30)
    assert "\n" not in str(caught.value)


def test_prefix_in_the_url_keeps_tenants_apart(redis_url: str, redis_prefix: str) -> None:
    a = open_store(f"{redis_url}?prefix={redis_prefix}-a")
    b = open_store(f"{redis_url}?prefix={redis_prefix}-b")
    a.reserve("r1", (ReserveLine("b", ("k",), Limits(), Amounts(9)),), now=T0, lease_seconds=30)
    assert b.counters(("k",), now=T0)["k"].reserved == Amounts()
    assert a.counters(("k",), now=T0)["k"].reserved == Amounts(9)
    a.close()
    b.close()
