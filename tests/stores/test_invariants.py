"""Budgets are never overspent, whatever the concurrency: threads, asyncio tasks and OS processes spend from
shared, overlapping budgets; some crash mid-request. Afterwards the counters must agree with what the callers
reported as settled, nothing may stay reserved, and no budget's settled spend may exceed its limit."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections import Counter as Tally
from concurrent.futures import ThreadPoolExecutor

import pytest

from fiscus.stores import Amounts, BudgetStore, open_store
from tests.stores.store_workload import BUDGETS, SEED_SPEND, aspend, seed, spend, spend_in_process

METERS = ("nanos", "tokens", "requests")
ALL_KEYS = tuple(sorted({key for keys, _ in BUDGETS.values() for key in keys}))


def check(store: BudgetStore, reports: list[tuple[Tally, int]]) -> None:
    settled: Tally = Tally()
    for tally, _ in reports:
        settled.update(tally)
    assert sum(refused for _, refused in reports) > 0, "the workload should exhaust some budget"
    later = time.time() + 3600  # every lease, crashed ones included, has expired by then
    store.reap(now=later)
    counters = store.counters(ALL_KEYS, now=later)
    for key in ALL_KEYS:
        assert counters[key].reserved == Amounts(), f"{key} still holds a reservation"
        seeded = SEED_SPEND if key == "roll:1" else Amounts()
        for meter in METERS:
            expected = settled[(key, meter)] + getattr(seeded, meter)
            assert getattr(counters[key].spent, meter) == expected, (key, meter)
    for name, (keys, limits) in BUDGETS.items():
        spent = sum((counters[key].spent for key in keys), Amounts())
        for meter in METERS:
            limit = getattr(limits, meter)
            assert limit is None or getattr(spent, meter) <= limit, f"{name} overspent on {meter}"


def test_threads_never_overspend(store: BudgetStore) -> None:
    seed(store)
    with ThreadPoolExecutor(8) as pool:
        reports = list(pool.map(lambda i: spend(store, f"thread{i}", 60, 0.1), range(8)))
    check(store, reports)


async def test_asyncio_tasks_never_overspend(store_url: str) -> None:
    store = open_store(store_url)
    try:
        seed(store)
        reports = await asyncio.gather(*(aspend(store, f"task{i}", 40, 0.1) for i in range(16)))
        check(store, list(reports))
    finally:
        await store.aclose()


@pytest.mark.parametrize("store_url", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)], indirect=True)
def test_processes_never_overspend(store_url: str) -> None:
    store = open_store(store_url)
    try:
        seed(store)
        context = multiprocessing.get_context("spawn")
        with context.Pool(4) as pool:
            reports = pool.starmap(spend_in_process, [(store_url, f"proc{i}", 150, 0.1) for i in range(4)])
        check(store, [(Tally(tally), refused) for tally, refused in reports])
    finally:
        store.close()
