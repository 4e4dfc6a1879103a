"""Random sequences of reserve / settle / renew / crash / clock moves, each store against a plain Python model."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule, run_state_machine_as_test

from fiscus.stores import Amounts, BudgetStore, Limits, Refusal, Reservation, ReserveLine, SettleOutcome, open_store

T0 = 1_800_000_000.0
BUDGETS = {
    "org": (("org",), Limits(nanos=5_000, requests=8)),
    "team": (("team",), Limits(nanos=3_000, tokens=900)),
    "window": (("w:2", "w:1"), Limits(nanos=2_500)),
    "free": (("free",), Limits()),
}
KEYS = ("org", "team", "w:2", "w:1", "free")
amounts = st.builds(Amounts, st.integers(0, 1_500), st.integers(0, 400), st.integers(0, 2))
budget_sets = st.lists(st.sampled_from(sorted(BUDGETS)), min_size=1, max_size=3, unique=True)


@dataclass
class Model:
    """What the counters must be: spent and reserved per key, live leases, settled ids."""

    spent: dict[str, Amounts] = field(default_factory=lambda: dict.fromkeys(KEYS, Amounts()))
    reserved: dict[str, Amounts] = field(default_factory=lambda: dict.fromkeys(KEYS, Amounts()))
    live: dict[str, tuple[tuple[ReserveLine, ...], float]] = field(default_factory=dict)
    settled: set[str] = field(default_factory=set)

    def reap(self, now: float) -> int:
        expired = [rid for rid, (_, expiry) in self.live.items() if expiry <= now]
        for rid in expired:
            self._release(rid)
        return len(expired)

    def _release(self, rid: str) -> None:
        lines, _ = self.live.pop(rid)
        for line in lines:
            self.reserved[line.keys[0]] = self.reserved[line.keys[0]] - line.amount

    def fits(self, lines: tuple[ReserveLine, ...]) -> bool:
        pending = dict.fromkeys(KEYS, Amounts())
        for line in lines:
            used = sum((self.spent[k] + self.reserved[k] + pending[k] for k in line.keys), Amounts())
            if not line.limits.admits(used, line.amount):
                return False
            pending[line.keys[0]] = pending[line.keys[0]] + line.amount
        return True

    def reserve(self, rid: str, lines: tuple[ReserveLine, ...], expiry: float) -> None:
        for line in lines:
            self.reserved[line.keys[0]] = self.reserved[line.keys[0]] + line.amount
        self.live[rid] = (lines, expiry)

    def settle(self, reservation: Reservation, actual: Amounts, now: float) -> str:
        self.reap(now)
        if reservation.id in self.settled:
            return SettleOutcome.DUPLICATE
        outcome = SettleOutcome.LATE
        if reservation.id in self.live:
            self._release(reservation.id)
            outcome = SettleOutcome.SETTLED
        for line in reservation.lines:
            self.spent[line.keys[0]] = self.spent[line.keys[0]] + actual
        self.settled.add(reservation.id)
        return outcome


class StoreMachine(RuleBasedStateMachine):
    open_store: Callable[[], BudgetStore]  # set by each test

    held = Bundle("held")
    done = Bundle("done")

    def __init__(self) -> None:
        super().__init__()
        self.store = type(self).open_store()
        self.model = Model()
        self.now = T0
        self.ids = 0

    def teardown(self) -> None:
        self.store.close()

    @rule(target=held, names=budget_sets, amount=amounts, lease=st.sampled_from([5.0, 30.0, 120.0]))
    def reserve(self, names: list[str], amount: Amounts, lease: float) -> Reservation | None:
        self.ids += 1
        rid = f"r{self.ids}"
        lines = tuple(ReserveLine(name, *BUDGETS[name], amount) for name in names)
        result = self.store.reserve(rid, lines, now=self.now, lease_seconds=lease)
        self.model.reap(self.now)
        if self.model.fits(lines):
            assert isinstance(result, Reservation)
            assert result.lease_expires_at == self.now + lease
            self.model.reserve(rid, lines, self.now + lease)
            return result
        assert isinstance(result, Refusal)
        return None

    @rule(target=done, reservation=consumes(held), actual=amounts)
    def settle(self, reservation: Reservation | None, actual: Amounts) -> Reservation | None:
        if reservation is None:
            return None
        assert self.store.settle(reservation, actual, now=self.now) == self.model.settle(reservation, actual, self.now)
        return reservation

    @rule(reservation=done, actual=amounts)
    def settle_again(self, reservation: Reservation | None, actual: Amounts) -> None:
        if reservation is not None:
            assert self.store.settle(reservation, actual, now=self.now) == SettleOutcome.DUPLICATE

    @rule(reservation=held, lease=st.sampled_from([1.0, 30.0]))
    def renew(self, reservation: Reservation | None, lease: float) -> None:
        if reservation is None:
            return
        entry = self.model.live.get(reservation.id)
        alive = entry is not None and entry[1] > self.now
        assert self.store.renew(reservation, now=self.now, lease_seconds=lease) is alive
        if alive:
            lines, expiry = self.model.live[reservation.id]
            self.model.live[reservation.id] = (lines, max(expiry, self.now + lease))

    @rule(reservation=consumes(held))
    def crash(self, reservation: Reservation | None) -> None:
        """The caller dies holding its reservation: it is never settled nor renewed; only its lease ends it."""

    @rule(seconds=st.sampled_from([0.5, 5.0, 29.0, 31.0, 200.0]))
    def advance(self, seconds: float) -> None:
        self.now += seconds

    @rule()
    def reap(self) -> None:
        assert self.store.reap(now=self.now) == self.model.reap(self.now)

    @invariant()
    def counters_match_the_model(self) -> None:
        counters = self.store.counters(KEYS, now=self.now)
        self.model.reap(self.now)
        for key in KEYS:
            assert counters[key].spent == self.model.spent[key], key
            assert counters[key].reserved == self.model.reserved[key], key


def run(opener: Callable[[], BudgetStore], examples: int) -> None:
    """Few examples for the slower backends: the model is the same, what varies is each backend's plumbing."""
    machine = type("Machine", (StoreMachine,), {"open_store": staticmethod(opener)})
    checks = settings(
        max_examples=examples, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    run_state_machine_as_test(machine, settings=checks)


def test_memory_store_follows_the_model() -> None:
    run(lambda: open_store("memory://"), examples=60)


def test_sqlite_store_follows_the_model(tmp_path: Path) -> None:
    run(lambda: open_store(f"sqlite:///{tmp_path / uuid.uuid4().hex}.db"), examples=30)


@pytest.mark.redis
def test_redis_store_follows_the_model(redis_url: str, redis_prefix: str) -> None:
    run(lambda: open_store(f"{redis_url}?prefix={redis_prefix}-{uuid.uuid4().hex[:8]}"), examples=25)
