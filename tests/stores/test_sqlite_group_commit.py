"""Group commit on the SQLite store: async settles of one event-loop turn share a transaction, and each caller is
answered only once its settle (and its outbox record) is committed and visible to another connection."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from fiscus.stores import Amounts, Limits, Reservation, ReserveLine, SettleOutcome
from fiscus.stores.sqlite import SqliteStore

T0 = 1_800_000_000.0


def reserve(store: SqliteStore, rid: str) -> Reservation:
    line = ReserveLine("b", ("k",), Limits(nanos=10_000), Amounts(100), expires_at=T0 + 86400)
    result = store.reserve(rid, (line,), now=T0, lease_seconds=30.0)
    assert isinstance(result, Reservation)
    return result


def outbox_ids(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:  # another connection: sees only what was committed
        return {row[0] for row in db.execute("SELECT id FROM fiscus_outbox")}


def test_concurrent_settles_share_one_commit_and_each_is_durable_when_answered(tmp_path: Path) -> None:
    path = tmp_path / "budget.db"
    store = SqliteStore(path)
    reservations = [reserve(store, f"r{i}") for i in range(20)]
    seen: dict[str, set[str]] = {}

    async def settle(reservation: Reservation) -> str:
        outcome = await store.asettle(reservation, Amounts(40), now=T0, record=reservation.id.encode())
        seen[reservation.id] = outbox_ids(path)
        return outcome

    async def run() -> list[str]:
        first = await asyncio.gather(*(settle(r) for r in reservations))
        again = await asyncio.gather(*(settle(r) for r in reservations[:3]))  # retried: counted once
        return first + again

    outcomes = asyncio.run(run())
    assert outcomes == [SettleOutcome.SETTLED] * 20 + [SettleOutcome.DUPLICATE] * 3
    assert all(rid in ids for rid, ids in seen.items())
    assert store._groups.batches == 2 and store._groups.items == 23  # two turns, two transactions
    counter = store.counters(("k",), now=T0)["k"]
    assert counter.spent == Amounts(800) and counter.reserved == Amounts()
    assert sorted(e.record for e in store.outbox(100)) == sorted(r.id.encode() for r in reservations)
    store.close()


def test_one_failing_settle_fails_only_its_own_caller(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "budget.db")
    good = reserve(store, "good")
    bad = Reservation("bad", good.lines, good.lease_expires_at)

    async def run() -> list[object]:
        return await asyncio.gather(
            store.asettle(good, Amounts(10), now=T0, record=b"g"),
            store.asettle(bad, Amounts(10), now=T0, record=object()),  # type: ignore[arg-type]  # SQLite refuses it
            return_exceptions=True,
        )

    good_outcome, bad_outcome = asyncio.run(run())
    assert good_outcome == SettleOutcome.SETTLED
    assert isinstance(bad_outcome, Exception)
    assert [e.id for e in store.outbox(10)] == ["good"]
    assert store.counters(("k",), now=T0)["k"].spent == Amounts(10)
    store.close()
