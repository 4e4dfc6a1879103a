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


def test_a_sliding_window_pushes_the_ttl_out_but_never_in(store: RedisStore, redis_url: str, redis_prefix: str) -> None:
    def use(rid: str, expires_at: float) -> None:
        line = ReserveLine("session", ("s",), Limits(), Amounts(1), expires_at=expires_at)
        reservation = store.reserve(rid, (line,), now=T0, lease_seconds=30)
        assert isinstance(reservation, Reservation)
        store.settle(reservation, Amounts(1), now=T0)

    client = redis.Redis.from_url(redis_url)
    key = f"{{{redis_prefix}}}:c:s"
    use("r1", T0 + 100)
    assert 86400 + 95 <= client.ttl(key) <= 86400 + 100
    use("r2", T0 + 3700)
    assert 86400 + 3695 <= client.ttl(key) <= 86400 + 3700
    use("r3", T0 + 100)  # an earlier deadline never shortens it
    assert client.ttl(key) >= 86400 + 3695
    client.close()


def test_listing_drops_counters_whose_ttl_ran_out(store: RedisStore, redis_url: str, redis_prefix: str) -> None:
    for key in ("u|a", "u|b", "u|c"):
        store.reserve(f"r-{key}", (ReserveLine("b", (key,), Limits(), Amounts(1)),), now=T0, lease_seconds=30)
    client = redis.Redis.from_url(redis_url)
    client.delete(f"{{{redis_prefix}}}:c:u|b")  # as its TTL running out would
    assert store.keys_with_prefix("u|", now=T0) == ["u|a", "u|c"]
    assert client.zrange(f"{{{redis_prefix}}}:index", 0, -1) == [
        f"{{{redis_prefix}}}:c:u|a".encode(),
        f"{{{redis_prefix}}}:c:u|c".encode(),
    ]
    client.close()


def test_listing_pages_through_a_large_index(store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fiscus.stores.redis.LIST_BATCH", 7)
    keys = [f"user|{i:03d}" for i in range(40)]
    for i, key in enumerate(keys):
        store.reserve(f"r{i}", (ReserveLine("b", (key,), Limits(), Amounts(1)),), now=T0, lease_seconds=30)
    assert store.keys_with_prefix("user|", now=T0) == keys
    assert asyncio.run(store.akeys_with_prefix("user|0", now=T0)) == keys[:40]


def test_stale_index_entries_are_pruned_when_counters_are_created(
    store: RedisStore, redis_url: str, redis_prefix: str
) -> None:
    tag = f"{{{redis_prefix}}}"
    gone = ReserveLine("b", ("old",), Limits(), Amounts(1), expires_at=T0)
    store.reserve("r1", (gone,), now=T0, lease_seconds=30)
    client = redis.Redis.from_url(redis_url)
    client.delete(f"{tag}:c:old")
    later = T0 + 2 * 86400  # past the old counter's deadline: the next new counter prunes its entry
    store.reserve(
        "r2", (ReserveLine("b", ("new",), Limits(), Amounts(1), expires_at=later + 60),), now=later, lease_seconds=30
    )
    assert client.zrange(f"{tag}:index", 0, -1) == [f"{tag}:c:new".encode()]
    assert client.zrange(f"{tag}:expiry", 0, -1) == [f"{tag}:c:new".encode()]
    client.close()
