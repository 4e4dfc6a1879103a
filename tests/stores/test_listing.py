"""Every store: listing counter keys by prefix, forgetting counters after their window, refusing key-less lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from fiscus.errors import StoreError
from fiscus.stores import Amounts, BudgetStore, Limits, Reservation, ReserveLine, open_store
from tests.stores.conftest import url_for

T0 = 1_800_000_000.0
DAY = 86400.0


def put(store: BudgetStore, key: str, *, expires_at: float | None = T0 + DAY, settle: bool = True) -> Reservation:
    request = (ReserveLine("b", (key,), Limits(), Amounts(5, 1, 1), expires_at=expires_at),)
    reservation = store.reserve(f"r-{key}", request, now=T0, lease_seconds=30)
    assert isinstance(reservation, Reservation)
    if settle:
        store.settle(reservation, Amounts(3), now=T0)
    return reservation


def test_keys_with_prefix_lists_only_matching_keys_sorted(store: BudgetStore) -> None:
    for key in ("b:users|user=zoe|2026-11", "b:users|user=al|2026-11", "b:team|team=x|2026-11", "b:users2|x"):
        put(store, key)
    assert store.keys_with_prefix("b:users|", now=T0) == ["b:users|user=al|2026-11", "b:users|user=zoe|2026-11"]
    assert store.keys_with_prefix("b:", now=T0) == sorted(
        ["b:users|user=zoe|2026-11", "b:users|user=al|2026-11", "b:team|team=x|2026-11", "b:users2|x"]
    )
    assert store.keys_with_prefix("b:nobody|", now=T0) == []


def test_prefix_is_literal_not_a_pattern(store: BudgetStore) -> None:
    for key in ("a*b|1", "axb|1", "a?c|1", "a[b]|1", "ab|1", "a\\b|1", "a%b|1", "a_b|1", "é|1", "\U0010ffff|1"):
        put(store, key)
    assert store.keys_with_prefix("a*", now=T0) == ["a*b|1"]
    assert store.keys_with_prefix("a?", now=T0) == ["a?c|1"]
    assert store.keys_with_prefix("a[b]", now=T0) == ["a[b]|1"]
    assert store.keys_with_prefix("a\\", now=T0) == ["a\\b|1"]
    assert store.keys_with_prefix("a%", now=T0) == ["a%b|1"]
    assert store.keys_with_prefix("a_", now=T0) == ["a_b|1"]
    assert store.keys_with_prefix("é", now=T0) == ["é|1"]
    assert store.keys_with_prefix("\U0010ffff", now=T0) == ["\U0010ffff|1"]
    assert len(store.keys_with_prefix("", now=T0)) == 10


def test_a_held_reservation_is_listed_too(store: BudgetStore) -> None:
    put(store, "held|1", settle=False)
    assert store.keys_with_prefix("held|", now=T0) == ["held|1"]


async def test_async_listing_matches(store_url: str) -> None:
    store = open_store(store_url)
    try:
        put(store, "p|2")
        put(store, "p|1")
        assert await store.akeys_with_prefix("p|", now=T0) == ["p|1", "p|2"]
    finally:
        await store.aclose()


@pytest.mark.parametrize("kind", ["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def test_counters_are_forgotten_after_their_window_and_margin(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store = open_store(url_for(kind, request, tmp_path), counter_ttl_margin=DAY)
    put(store, "w|short", expires_at=T0 + 60)
    put(store, "w|long", expires_at=T0 + 10 * DAY)
    put(store, "w|forever", expires_at=None)
    held = put(store, "w|held", expires_at=T0 + 60, settle=False)
    store.renew(held, now=T0 + 20, lease_seconds=2 * DAY)
    later = T0 + 60 + DAY + 1
    assert store.keys_with_prefix("w|", now=T0 + 60 + DAY) == ["w|forever", "w|held", "w|long", "w|short"]
    store.reap(now=later)
    assert store.keys_with_prefix("w|", now=later) == ["w|forever", "w|held", "w|long"]  # held: still reserved
    assert store.counters(("w|short",), now=later)["w|short"].spent == Amounts()
    # once its lease runs out the held counter goes too
    end = T0 + 20 + 2 * DAY + DAY + 1
    store.reap(now=end)
    assert store.keys_with_prefix("w|", now=end) == ["w|forever", "w|long"]
    store.close()


def test_a_new_request_after_the_drop_starts_from_zero(tmp_path) -> None:
    store = open_store("memory://", counter_ttl_margin=10)
    put(store, "k", expires_at=T0 + 60)
    request = (ReserveLine("b", ("k",), Limits(nanos=5), Amounts(5), expires_at=T0 + 200),)
    assert not isinstance(store.reserve("again", request, now=T0 + 60, lease_seconds=30), Reservation)
    assert isinstance(store.reserve("again", request, now=T0 + 71, lease_seconds=30), Reservation)


def test_a_line_without_keys_is_an_error(store: BudgetStore) -> None:
    bad = ReserveLine("nokeys", (), Limits(), Amounts(1))
    good = ReserveLine("fine", ("k",), Limits(), Amounts(1))
    with pytest.raises(StoreError, match="'nokeys': a reserve line needs at least one counter key"):
        store.reserve("r1", (good, bad), now=T0, lease_seconds=30)
    assert store.counters(("k",), now=T0)["k"].reserved == Amounts()
    with pytest.raises(StoreError, match="at least one counter key"):
        store.settle(Reservation("r2", (good, bad), T0 + 30), Amounts(1), now=T0)
    assert store.counters(("k",), now=T0)["k"].spent == Amounts()
