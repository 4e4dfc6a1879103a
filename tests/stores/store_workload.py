"""A spending workload for the concurrency tests: callers reserve random multi-line requests against shared,
overlapping budgets, settle a random actual ≤ what they reserved, and some "crash" (never settle, short lease).

Lives in its own module so spawned processes can import it. Each caller reports what it settled, which is
what a ledger would hold; the test then checks the store's counters against those reports.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter as Tally

from fiscus.stores import Amounts, BudgetStore, Limits, Reservation, ReserveLine, open_store

LEASE = 60.0  # long enough that no live caller's lease expires during a run
CRASH_LEASE = 0.01  # a crashed caller's reservation expires almost at once and is reaped by others
SEED_SPEND = Amounts(10_000, 2_000, 5)  # already spent in the rolling window's older bucket

BUDGETS: dict[str, tuple[tuple[str, ...], Limits]] = {
    "org": (("org",), Limits(nanos=400_000)),
    "team-a": (("team-a",), Limits(nanos=150_000, requests=120)),
    "team-b": (("team-b",), Limits(nanos=150_000, tokens=90_000)),
    "roll": (("roll:2", "roll:1"), Limits(nanos=90_000, tokens=60_000)),
}
REQUEST_SHAPES = (("org", "team-a"), ("org", "team-b"), ("org", "team-a", "roll"), ("team-b", "roll"), ("roll",))


def seed(store: BudgetStore) -> None:
    line = ReserveLine("roll", ("roll:1",), Limits(), SEED_SPEND)
    reservation = store.reserve("seed", (line,), now=time.time(), lease_seconds=LEASE)
    assert isinstance(reservation, Reservation)
    store.settle(reservation, SEED_SPEND, now=time.time())


def _request(rng: random.Random) -> tuple[tuple[ReserveLine, ...], Amounts]:
    amount = Amounts(rng.randint(100, 4_000), rng.randint(10, 1_500), 1)
    lines = tuple(ReserveLine(name, *BUDGETS[name], amount) for name in rng.choice(REQUEST_SHAPES))
    actual = Amounts(rng.randint(0, amount.nanos), rng.randint(0, amount.tokens), rng.randint(0, 1))
    return lines, actual


def _record(settled: Tally, lines: tuple[ReserveLine, ...], actual: Amounts) -> None:
    for line in lines:
        settled[(line.keys[0], "nanos")] += actual.nanos
        settled[(line.keys[0], "tokens")] += actual.tokens
        settled[(line.keys[0], "requests")] += actual.requests


def spend(store: BudgetStore, name: str, operations: int, crash_rate: float) -> tuple[Tally, int]:
    """Run one caller; returns its settled totals per (key, meter) and how many reserves were refused."""
    rng = random.Random(name)
    settled: Tally = Tally()
    refused = 0
    for i in range(operations):
        lines, actual = _request(rng)
        crash = rng.random() < crash_rate
        result = store.reserve(f"{name}-{i}", lines, now=time.time(), lease_seconds=CRASH_LEASE if crash else LEASE)
        if not isinstance(result, Reservation):
            refused += 1
            continue
        if crash:
            continue
        store.settle(result, actual, now=time.time())
        _record(settled, lines, actual)
    return settled, refused


async def aspend(store: BudgetStore, name: str, operations: int, crash_rate: float) -> tuple[Tally, int]:
    rng = random.Random(name)
    settled: Tally = Tally()
    refused = 0
    for i in range(operations):
        lines, actual = _request(rng)
        crash = rng.random() < crash_rate
        lease = CRASH_LEASE if crash else LEASE
        result = await store.areserve(f"{name}-{i}", lines, now=time.time(), lease_seconds=lease)
        if not isinstance(result, Reservation):
            refused += 1
            continue
        if crash:
            continue
        await asyncio.sleep(0)  # let other callers in between reserve and settle
        await store.asettle(result, actual, now=time.time())
        _record(settled, lines, actual)
    return settled, refused


def spend_in_process(url: str, name: str, operations: int, crash_rate: float) -> tuple[dict, int]:
    """Entry point of a spawned process: its own store connection, same workload."""
    store = open_store(url)
    try:
        settled, refused = spend(store, name, operations, crash_rate)
    finally:
        store.close()
    return dict(settled), refused
