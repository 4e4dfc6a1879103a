"""One suite, every store: the `BudgetStore` contract on a simulated clock."""

from __future__ import annotations

import pytest

from fiscus.errors import StoreError
from fiscus.stores import (
    Amounts,
    BudgetStore,
    Counter,
    Limits,
    Refusal,
    Reservation,
    ReserveLine,
    SettleOutcome,
    open_store,
)

T0 = 1_800_000_000.0  # a simulated "now"
LEASE = 30.0


def line(budget: str, *keys: str, limit: Limits | None = None, nanos: int = 0, tokens: int = 0, requests: int = 0):
    return ReserveLine(budget, keys, limit or Limits(), Amounts(nanos, tokens, requests), expires_at=T0 + 86400)


def counter(store: BudgetStore, key: str, now: float = T0) -> Counter:
    return store.counters((key,), now=now)[key]


def granted(result: Reservation | Refusal) -> Reservation:
    assert isinstance(result, Reservation), result
    return result


def spend(store: BudgetStore, rid: str, key: str, nanos: int, now: float = T0) -> None:
    """Put settled spend on a key, as an earlier request would have."""
    reservation = granted(store.reserve(rid, (line("seed", key, nanos=nanos),), now=now, lease_seconds=LEASE))
    assert store.settle(reservation, Amounts(nanos), now=now) == SettleOutcome.SETTLED


def test_reserve_that_fits_is_held_on_the_first_key(store: BudgetStore) -> None:
    request = line("team", "t", limit=Limits(nanos=1000), nanos=400, tokens=50, requests=1)
    reservation = granted(store.reserve("r1", (request,), now=T0, lease_seconds=LEASE))
    assert reservation.id == "r1"
    assert reservation.lines == (request,)
    assert reservation.lease_expires_at == T0 + LEASE
    assert counter(store, "t") == Counter(Amounts(), Amounts(400, 50, 1))


def test_refusal_names_the_line_and_changes_nothing(store: BudgetStore) -> None:
    spend(store, "seed", "t", 700)
    refused = store.reserve(
        "r1", (line("team", "t", limit=Limits(nanos=1000), nanos=301),), now=T0, lease_seconds=LEASE
    )
    assert refused == Refusal("team", Amounts(700), Limits(nanos=1000))
    assert counter(store, "t") == Counter(Amounts(700), Amounts())
    # the refused id is free: nothing was recorded under it
    assert granted(
        store.reserve("r1", (line("team", "t", limit=Limits(nanos=1000), nanos=300),), now=T0, lease_seconds=LEASE)
    )


def test_exactly_reaching_the_limit_is_allowed(store: BudgetStore) -> None:
    granted(store.reserve("a", (line("b", "k", limit=Limits(nanos=10), nanos=10),), now=T0, lease_seconds=LEASE))
    refused = store.reserve("b", (line("b", "k", limit=Limits(nanos=10), nanos=1),), now=T0, lease_seconds=LEASE)
    assert isinstance(refused, Refusal)


def test_one_line_over_means_nothing_is_reserved_anywhere(store: BudgetStore) -> None:
    lines = (
        line("org", "o", limit=Limits(nanos=10_000), nanos=500),
        line("team", "t", limit=Limits(nanos=10_000), nanos=500),
        line("user", "u", limit=Limits(nanos=499), nanos=500),
    )
    refused = store.reserve("r1", lines, now=T0, lease_seconds=LEASE)
    assert isinstance(refused, Refusal) and refused.budget == "user"
    assert store.counters(("o", "t", "u"), now=T0) == {"o": Counter(), "t": Counter(), "u": Counter()}
    assert store.reap(now=T0 + 10 * LEASE) == 0


@pytest.mark.parametrize(
    ("limits", "amount", "fits"),
    [
        (Limits(nanos=100), Amounts(101, 10**9, 10**6), False),
        (Limits(nanos=100), Amounts(100, 10**9, 10**6), True),
        (Limits(tokens=100), Amounts(10**12, 101, 0), False),
        (Limits(tokens=100), Amounts(10**12, 100, 0), True),
        (Limits(requests=1), Amounts(0, 0, 2), False),
        (Limits(requests=1), Amounts(0, 0, 1), True),
        (Limits(), Amounts(10**15, 10**12, 10**9), True),
        (Limits(nanos=0, tokens=0, requests=0), Amounts(), True),
    ],
)
def test_each_meter_has_its_own_limit(store: BudgetStore, limits: Limits, amount: Amounts, fits: bool) -> None:
    request = ReserveLine("b", ("k",), limits, amount)
    result = store.reserve("r", (request,), now=T0, lease_seconds=LEASE)
    assert isinstance(result, Reservation) is fits
    assert counter(store, "k").reserved == (amount if fits else Amounts())


def test_a_line_sums_every_key_of_a_rolling_window(store: BudgetStore) -> None:
    spend(store, "h1", "w:h1", 300)
    spend(store, "h2", "w:h2", 300)
    window = Limits(nanos=1000, requests=10)
    assert isinstance(
        store.reserve("x", (line("w", "w:h3", "w:h2", "w:h1", limit=window, nanos=401),), now=T0, lease_seconds=LEASE),
        Refusal,
    )
    reservation = granted(
        store.reserve("y", (line("w", "w:h3", "w:h2", "w:h1", limit=window, nanos=400),), now=T0, lease_seconds=LEASE)
    )
    assert counter(store, "w:h3").reserved == Amounts(400)
    assert counter(store, "w:h2") == Counter(Amounts(300), Amounts())
    # once the oldest bucket leaves the window its spend no longer counts
    store.settle(reservation, Amounts(400), now=T0)
    assert granted(
        store.reserve("z", (line("w", "w:h4", "w:h3", "w:h2", limit=window, nanos=300),), now=T0, lease_seconds=LEASE)
    )


def test_lines_of_one_request_that_share_a_key_count_each_other(store: BudgetStore) -> None:
    lines = (line("a", "k", limit=Limits(nanos=100), nanos=60), line("b", "k", limit=Limits(nanos=100), nanos=60))
    assert isinstance(store.reserve("r", lines, now=T0, lease_seconds=LEASE), Refusal)
    assert counter(store, "k") == Counter()


def test_settle_releases_the_reservation_and_adds_actual_to_each_first_key(store: BudgetStore) -> None:
    lines = (
        line("org", "o", limit=Limits(nanos=10_000), nanos=900, tokens=100, requests=1),
        line("win", "w2", "w1", limit=Limits(nanos=10_000), nanos=900, tokens=100, requests=1),
    )
    reservation = granted(store.reserve("r1", lines, now=T0, lease_seconds=LEASE))
    assert store.settle(reservation, Amounts(250, 40, 1), now=T0 + 1) == SettleOutcome.SETTLED
    assert store.counters(("o", "w2", "w1"), now=T0 + 1) == {
        "o": Counter(Amounts(250, 40, 1), Amounts()),
        "w2": Counter(Amounts(250, 40, 1), Amounts()),
        "w1": Counter(),
    }
    assert store.renew(reservation, now=T0 + 2, lease_seconds=LEASE) is False


def test_settle_is_idempotent(store: BudgetStore) -> None:
    reservation = granted(store.reserve("r1", (line("b", "k", nanos=500),), now=T0, lease_seconds=LEASE))
    assert store.settle(reservation, Amounts(200), now=T0) == SettleOutcome.SETTLED
    assert store.settle(reservation, Amounts(200), now=T0) == SettleOutcome.DUPLICATE
    assert store.settle(reservation, Amounts(999), now=T0 + 5 * LEASE) == SettleOutcome.DUPLICATE
    assert counter(store, "k", T0 + 5 * LEASE) == Counter(Amounts(200), Amounts())


@pytest.mark.parametrize("reaped_first", [True, False])
def test_late_settle_adds_spend_once(store: BudgetStore, reaped_first: bool) -> None:
    reservation = granted(store.reserve("r1", (line("b", "k", nanos=500),), now=T0, lease_seconds=LEASE))
    late = T0 + LEASE  # a lease is expired from its expiry instant on
    if reaped_first:
        assert store.reap(now=late) == 1
        assert counter(store, "k", late) == Counter()
    assert store.settle(reservation, Amounts(300), now=late) == SettleOutcome.LATE
    assert store.settle(reservation, Amounts(300), now=late) == SettleOutcome.DUPLICATE
    assert store.reap(now=late + 100) == 0
    assert counter(store, "k", late + 100) == Counter(Amounts(300), Amounts())


def test_settle_of_an_unknown_reservation_still_records_spend(store: BudgetStore) -> None:
    ghost = Reservation("never-reserved", (line("b", "k", nanos=10),), T0 + LEASE)
    assert store.settle(ghost, Amounts(7, 3, 1), now=T0) == SettleOutcome.LATE
    assert counter(store, "k") == Counter(Amounts(7, 3, 1), Amounts())


def test_renew_extends_a_live_lease_only(store: BudgetStore) -> None:
    reservation = granted(store.reserve("r1", (line("b", "k", nanos=500),), now=T0, lease_seconds=LEASE))
    assert store.renew(reservation, now=T0 + 20, lease_seconds=LEASE) is True  # now expires at T0 + 50
    assert store.renew(reservation, now=T0 + 21, lease_seconds=1) is True  # never shortens
    assert store.reap(now=T0 + 40) == 0
    assert counter(store, "k", T0 + 40).reserved == Amounts(500)
    assert store.reap(now=T0 + 50) == 1
    assert store.renew(reservation, now=T0 + 51, lease_seconds=LEASE) is False
    assert counter(store, "k", T0 + 51) == Counter()


def test_renew_fails_after_expiry_even_before_a_reap(store: BudgetStore) -> None:
    reservation = granted(store.reserve("r1", (line("b", "k", nanos=500),), now=T0, lease_seconds=LEASE))
    assert store.renew(reservation, now=T0 + LEASE, lease_seconds=LEASE) is False


def test_renew_fails_after_settle(store: BudgetStore) -> None:
    reservation = granted(store.reserve("r1", (line("b", "k", nanos=500),), now=T0, lease_seconds=LEASE))
    store.settle(reservation, Amounts(1), now=T0)
    assert store.renew(reservation, now=T0 + 1, lease_seconds=LEASE) is False


def test_reap_returns_only_expired_reservations(store: BudgetStore) -> None:
    for i, lease in enumerate((10.0, 20.0, 60.0)):
        granted(store.reserve(f"r{i}", (line("b", "k", nanos=100),), now=T0, lease_seconds=lease))
    assert store.reap(now=T0 + 5) == 0
    assert store.reap(now=T0 + 20) == 2
    assert counter(store, "k", T0 + 20).reserved == Amounts(100)
    assert store.reap(now=T0 + 20) == 0
    assert store.reap(now=T0 + 60) == 1


def test_reserve_reaps_expired_leases_first(store: BudgetStore) -> None:
    full = line("b", "k", limit=Limits(nanos=100), nanos=100)
    granted(store.reserve("crashed", (full,), now=T0, lease_seconds=LEASE))
    assert isinstance(store.reserve("r2", (full,), now=T0 + 1, lease_seconds=LEASE), Refusal)
    assert granted(store.reserve("r3", (full,), now=T0 + LEASE, lease_seconds=LEASE))


def test_counters_of_unknown_keys_are_zero(store: BudgetStore) -> None:
    assert store.counters(("nothing", "here"), now=T0) == {"nothing": Counter(), "here": Counter()}
    assert store.counters((), now=T0) == {}


def test_a_retried_reserve_returns_the_first_reservation(store: BudgetStore) -> None:
    request = (line("b", "k", limit=Limits(nanos=1000), nanos=600),)
    first = granted(store.reserve("r1", request, now=T0, lease_seconds=LEASE))
    again = granted(store.reserve("r1", request, now=T0 + 1, lease_seconds=LEASE))
    assert again.lease_expires_at == first.lease_expires_at
    assert counter(store, "k").reserved == Amounts(600)


def test_reserving_under_a_settled_id_is_an_error(store: BudgetStore) -> None:
    request = (line("b", "k", nanos=10),)
    store.settle(granted(store.reserve("r1", request, now=T0, lease_seconds=LEASE)), Amounts(10), now=T0)
    with pytest.raises(StoreError, match="already settled"):
        store.reserve("r1", request, now=T0, lease_seconds=LEASE)


async def test_async_methods_follow_the_same_contract(store_url: str) -> None:
    store = open_store(store_url)
    try:
        request = (line("b", "k", limit=Limits(nanos=1000), nanos=800),)
        reservation = await store.areserve("r1", request, now=T0, lease_seconds=LEASE)
        assert isinstance(reservation, Reservation)
        assert isinstance(await store.areserve("r2", request, now=T0, lease_seconds=LEASE), Refusal)
        assert await store.arenew(reservation, now=T0 + 1, lease_seconds=LEASE) is True
        assert await store.asettle(reservation, Amounts(100), now=T0 + 2) == SettleOutcome.SETTLED
        assert await store.asettle(reservation, Amounts(100), now=T0 + 2) == SettleOutcome.DUPLICATE
        assert await store.acounters(("k",), now=T0 + 2) == {"k": Counter(Amounts(100), Amounts())}
    finally:
        await store.aclose()
