"""What only the Redis store has: key layout, dropping counters through the expiry index, script reloading, the
exact-integer bound, error mapping."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import redis
from redis.crc import key_slot

from fiscus.errors import StoreError
from fiscus.stores import Amounts, Counter, Limits, Reservation, ReserveLine, SettleOutcome, open_store
from fiscus.stores.redis import MAX_EXACT, RedisStore
from fiscus.stores.redis_channel import bulk
from fiscus.stores.redis_scripts import LAYOUT, LIBRARY

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
    names = ("c:k1", "epoch", "expiry", "index", "leases", "r:r1", "r:r2")  # epoch: the loss marker
    assert keys == sorted(f"{{{redis_prefix}}}:{LAYOUT}:{name}" for name in names)
    assert len({key_slot(k.encode()) for k in keys}) == 1  # one Redis Cluster slot
    # the settled marker is forgotten after a while; counters are dropped through the expiry index instead
    assert 0 < client.ttl(f"{{{redis_prefix}}}:{LAYOUT}:r:r1") <= 86400
    assert client.ttl(f"{{{redis_prefix}}}:{LAYOUT}:c:k1") == -1
    assert (
        client.zscore(f"{{{redis_prefix}}}:{LAYOUT}:expiry", f"{{{redis_prefix}}}:{LAYOUT}:c:k1") == T0 + 3600 + 86400
    )
    client.close()


def test_keys_of_an_older_layout_are_never_read(store: RedisStore, redis_url: str, redis_prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.hset(f"{{{redis_prefix}}}:c:k", mapping={"sn": 5, "rn": 7})  # the hash layout before v2
    client.close()
    assert store.counters(("k",), now=T0)["k"] == Counter()
    request = (ReserveLine("b", ("k",), Limits(nanos=1), Amounts(1)),)
    assert isinstance(store.reserve("r1", request, now=T0, lease_seconds=30), Reservation)


@pytest.mark.parametrize("expires_at", [None, T0 + 60])
def test_counters_are_dropped_after_their_time_on_the_callers_clock(
    store: RedisStore, expires_at: float | None
) -> None:
    line = ReserveLine("b", ("k",), Limits(nanos=10), Amounts(10), expires_at=expires_at)
    reservation = store.reserve("r1", (line,), now=T0, lease_seconds=30)
    assert isinstance(reservation, Reservation)
    store.settle(reservation, Amounts(10), now=T0)
    end = T0 + 60 + 86400  # the line's expires_at plus the default margin
    assert store.keys_with_prefix("k", now=end) == ["k"]
    assert store.counters(("k",), now=end)["k"].spent == Amounts(10)
    gone = expires_at is not None
    assert store.keys_with_prefix("k", now=end + 1) == ([] if gone else ["k"])
    assert store.counters(("k",), now=end + 1)["k"].spent == (Amounts() if gone else Amounts(10))
    again = store.reserve("r2", (line,), now=end + 1, lease_seconds=30)
    assert isinstance(again, Reservation) is gone  # a dropped counter starts again from zero


def forget_scripts(redis_url: str) -> None:
    """As a server restart without persistence would: no cached scripts, no fiscus function library."""
    client = redis.Redis.from_url(redis_url)
    client.script_flush()
    with contextlib.suppress(redis.ResponseError):  # not loaded
        client.function_delete(LIBRARY)
    client.close()


@pytest.mark.parametrize("functions", [True, False])
def test_scripts_are_reloaded_after_a_flush(redis_url: str, redis_prefix: str, functions: bool) -> None:
    store = open_store(f"{redis_url}?prefix={redis_prefix}", functions=functions)
    line = ReserveLine("b", ("k",), Limits(), Amounts(1))
    assert isinstance(store.reserve("r0", (line,), now=T0, lease_seconds=30), Reservation)
    forget_scripts(redis_url)
    reservation = store.reserve("r1", (line,), now=T0, lease_seconds=30)
    assert isinstance(reservation, Reservation)
    assert store.settle(reservation, Amounts(1), now=T0) == SettleOutcome.SETTLED
    store.close()


def test_without_fcall_the_scripts_run_by_evalsha(store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fiscus.stores.redis_scripts._FCALL", bulk(b"FCALL-UNKNOWN"))  # as on Redis 6
    reservation = store.reserve("r1", (ReserveLine("b", ("k",), Limits(), Amounts(2)),), now=T0, lease_seconds=30)
    assert isinstance(reservation, Reservation)
    assert store.settle(reservation, Amounts(1), now=T0) == SettleOutcome.SETTLED
    assert store.counters(("k",), now=T0)["k"] == Counter(Amounts(1), Amounts())


async def test_concurrent_async_calls_share_pipelines_and_survive_a_flush(redis_url: str, redis_prefix: str) -> None:
    store = open_store(f"{redis_url}?prefix={redis_prefix}")
    forget_scripts(redis_url)
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


def test_a_counter_is_never_taken_past_the_exact_range(store: RedisStore) -> None:
    half = (ReserveLine("b", ("k",), Limits(), Amounts(MAX_EXACT // 2 + 1)),)
    first = store.reserve("r1", half, now=T0, lease_seconds=30)
    assert isinstance(first, Reservation)
    with pytest.raises(StoreError, match=r"^Redis store .*counter .*k would pass 2\*\*53-1"):
        store.reserve("r2", half, now=T0, lease_seconds=30)
    assert store.settle(first, Amounts(MAX_EXACT // 2 + 1), now=T0) == SettleOutcome.SETTLED
    second = store.reserve("r3", (ReserveLine("b", ("k",), Limits(), Amounts(1)),), now=T0, lease_seconds=30)
    assert isinstance(second, Reservation)
    with pytest.raises(StoreError, match=r"would pass 2\*\*53-1"):  # the spend would not fit: nothing changes
        store.settle(second, Amounts(MAX_EXACT // 2 + 1), now=T0)
    assert store.counters(("k",), now=T0)["k"] == Counter(Amounts(MAX_EXACT // 2 + 1), Amounts(1))
    assert store.settle(second, Amounts(1), now=T0) == SettleOutcome.SETTLED


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


def test_a_sliding_window_pushes_the_drop_time_out_but_never_in(store: RedisStore) -> None:
    def use(rid: str, expires_at: float) -> None:
        line = ReserveLine("session", ("s",), Limits(), Amounts(1), expires_at=expires_at)
        reservation = store.reserve(rid, (line,), now=T0, lease_seconds=30)
        assert isinstance(reservation, Reservation)
        store.settle(reservation, Amounts(1), now=T0)

    use("r1", T0 + 100)
    use("r2", T0 + 3700)
    use("r3", T0 + 100)  # an earlier deadline never brings it in
    end = T0 + 3700 + 86400
    assert store.reap(now=end) == 0  # prunes the expiry index: the entry of T0 + 100 was out of date
    assert store.keys_with_prefix("s", now=end) == ["s"]
    assert store.counters(("s",), now=end)["s"].spent == Amounts(3)
    assert store.keys_with_prefix("s", now=end + 1) == []


def test_listing_drops_counters_that_are_gone(store: RedisStore, redis_url: str, redis_prefix: str) -> None:
    for key in ("u|a", "u|b", "u|c"):
        store.reserve(f"r-{key}", (ReserveLine("b", (key,), Limits(), Amounts(1)),), now=T0, lease_seconds=30)
    client = redis.Redis.from_url(redis_url)
    tag = f"{{{redis_prefix}}}:{LAYOUT}"
    client.delete(f"{tag}:c:u|b")
    assert store.keys_with_prefix("u|", now=T0) == ["u|a", "u|c"]
    assert client.zrange(f"{tag}:index", 0, -1) == [f"{tag}:c:u|a".encode(), f"{tag}:c:u|c".encode()]
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
    tag = f"{{{redis_prefix}}}:{LAYOUT}"
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
