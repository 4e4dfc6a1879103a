"""The memory store remembers settled ids for at least `settled_ttl` or the next `settled_max` settles (a retried
settle is a duplicate), then forgets them, so a long-running process does not keep every id it ever settled."""

from __future__ import annotations

from fiscus.stores import Amounts, Limits, Reservation, ReserveLine, SettleOutcome
from fiscus.stores.memory import MemoryStore

T0 = 1_800_000_000.0
TTL = 100.0


def settle_one(store: MemoryStore, rid: str, now: float) -> Reservation:
    lines = (ReserveLine("b", ("k",), Limits(), Amounts(5, 1, 1), expires_at=now + 86400),)
    reservation = store.reserve(rid, lines, now=now, lease_seconds=30)
    assert isinstance(reservation, Reservation)
    assert store.settle(reservation, Amounts(3, 1, 1), now=now) == SettleOutcome.SETTLED
    return reservation


def test_a_retried_settle_within_the_ttl_is_a_duplicate_however_the_settles_fall() -> None:
    store = MemoryStore(settled_ttl=TTL)
    first = settle_one(store, "r0", T0)
    for step in range(1, 10):  # other settles move the generations on meanwhile
        settle_one(store, f"r{step}", T0 + step * 11)
    assert store.settle(first, Amounts(3, 1, 1), now=T0 + TTL - 1) == SettleOutcome.DUPLICATE
    spent = store.counters(("k",), now=T0 + TTL - 1)["k"].spent
    assert spent == Amounts(30, 10, 10)  # ten settles, the retry added nothing


def test_settled_ids_are_forgotten_after_two_ttls_of_settles() -> None:
    store = MemoryStore(settled_ttl=TTL)
    for step in range(50):
        settle_one(store, f"old{step}", T0 + step)
    for step in range(3):
        settle_one(store, f"new{step}", T0 + (step + 1) * TTL + 50)
    remembered = set(store._settled) | set(store._settled_before)
    assert not any(rid.startswith("old") for rid in remembered)
    assert {"new1", "new2"} <= remembered


def test_a_busy_store_keeps_a_bounded_number_of_settled_ids() -> None:
    store = MemoryStore(settled_ttl=TTL, settled_max=10)
    first = settle_one(store, "r0", T0)
    for step in range(1, 10):  # within the next `settled_max` settles a retry is still a duplicate
        settle_one(store, f"r{step}", T0 + step * 0.001)
    assert store.settle(first, Amounts(3, 1, 1), now=T0 + 0.5) == SettleOutcome.DUPLICATE
    for step in range(10, 1000):  # far more settles than `settled_max` within one TTL
        settle_one(store, f"r{step}", T0 + 1 + step * 0.001)
        assert len(store._settled) + len(store._settled_before) <= 20
    assert "r999" in store._settled and "r0" not in store._settled_before
