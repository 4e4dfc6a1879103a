"""Ledger ingest rate: events/s through `Ledger.append` (batches) and `LedgerWriter`, beside the raw driver's
best bulk insert of the same rows into the same schema in the same run (sqlite3 executemany in one
transaction; psycopg COPY). Prints each rate and the ratio to the raw baseline.

    .venv/bin/python bench/ledger_ingest.py --events 50000 [--postgres-url postgresql://postgres@127.0.0.1/test]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from fiscus.attribution import Attribution
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.ledger import LedgerWriter, open_ledger
from fiscus.ledger.postgres import PostgresLedger
from fiscus.ledger.rows import COLUMNS, TABLE, postgres_row, sqlite_row
from fiscus.pricing.cost import Cost
from fiscus.usage.model import Usage

TEAMS = ("growth", "search", "support", "platform")
AGENTS = ("triage", "coder", "writer", "planner", "reviewer")
MODELS = ("gpt-4o-mini", "gpt-4.1", "claude-sonnet-4-5", "claude-haiku-4-5")


def uuid7(ts: datetime, rng: random.Random) -> str:
    """A time-ordered id in the layout `new_event_id` gives live events, for the event's own timestamp."""
    ms = int(ts.timestamp() * 1000)
    value = (ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62) | rng.getrandbits(62)
    return str(uuid.UUID(int=value))


def make_events(n: int, seed: int = 7) -> list[CostEvent]:
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events = []
    for i in range(n):
        tin, tout = rng.randint(100, 20_000), rng.randint(10, 2_000)
        cached = rng.randint(0, tin)
        events.append(
            CostEvent(
                provider="openai" if i % 2 else "anthropic",
                requested_model=MODELS[i % 4],
                served_model=MODELS[(i + (i % 7 == 0)) % 4],
                usage=Usage(input_tokens=tin - cached, cache_read_tokens=cached, output_tokens=tout),
                cost=Cost(
                    input=Decimal(tin - cached) * Decimal("0.0000025"),
                    cache_read=Decimal(cached) * Decimal("0.00000125"),
                    output=Decimal(tout) * Decimal("0.00001"),
                ),
                attribution=Attribution(
                    team=TEAMS[i % 4],
                    agent=AGENTS[i % 5],
                    tenant=f"tenant-{i % 50}",
                    session=f"s-{i // 20}",
                    environment="prod",
                    outcome="resolved" if i % 10 == 0 else None,
                ),
                status=CallStatus.OK if i % 50 else CallStatus.ERROR,
                id=uuid7(start + timedelta(seconds=i), rng),
                timestamp=start + timedelta(seconds=i),
                latency_ms=rng.randint(100, 9_000),
            )
        )
    return events


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def through_ledger(url: str, events: list[CostEvent], batch: int) -> float:
    ledger = open_ledger(url)
    try:

        def run() -> None:
            for i in range(0, len(events), batch):
                ledger.append(events[i : i + batch])

        return timed(run)
    finally:
        ledger.close()


def through_writer(url: str, events: list[CostEvent], batch: int, spill: Path) -> float:
    ledger = open_ledger(url)
    try:

        def run() -> None:
            writer = LedgerWriter(ledger, batch_size=batch, spill_path=spill)
            for event in events:
                writer.submit(event)
            writer.close()
            assert writer.written == len(events), (writer.written, len(events))

        return timed(run)
    finally:
        ledger.close()


def report(name: str, n: int, seconds: float, baseline: float) -> None:
    r = rate(n, seconds)
    print(f"  {name:<44} {r:>12,.0f} events/s   {r / baseline:5.2f}x raw")


def bench_sqlite(events: list[CostEvent], batch: int, tmp: Path) -> None:
    n = len(events)
    raw_db = tmp / "raw.db"
    open_ledger(f"sqlite:///{raw_db}").close()  # same schema and indexes as the ledger's
    rows = [sqlite_row(e) for e in events]
    conn = sqlite3.connect(raw_db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    plain_insert = f"INSERT INTO {TABLE} VALUES ({', '.join('?' * len(COLUMNS))})"

    def raw() -> None:
        conn.execute("BEGIN")
        conn.executemany(plain_insert, rows)
        conn.execute("COMMIT")

    raw_s = timed(raw)
    conn.close()
    baseline = rate(n, raw_s)
    print(f"SQLite ({n:,} events, batches of {batch})")
    print(f"  {'raw sqlite3 executemany, one transaction':<44} {baseline:>12,.0f} events/s")
    report("Ledger.append", n, through_ledger(f"sqlite:///{tmp / 'ledger.db'}", events, batch), baseline)
    writer_s = through_writer(f"sqlite:///{tmp / 'w.db'}", events, batch, tmp / "s")
    report("LedgerWriter submit → close", n, writer_s, baseline)


def bench_postgres(url: str, events: list[CostEvent], batch: int, tmp: Path) -> None:
    try:
        import psycopg

        admin = psycopg.connect(url, autocommit=True, connect_timeout=3)
    except Exception as exc:
        print(f"PostgreSQL skipped: not reachable at {url} ({str(exc).strip().splitlines()[0]})")
        return
    n = len(events)
    schemas = [f"fiscus_bench_{uuid.uuid4().hex[:8]}" for _ in range(4)]
    sep = "&" if "?" in url else "?"
    urls = [f"{url}{sep}options=-csearch_path%3D{s}" for s in schemas]
    try:
        for schema in schemas:
            admin.execute(f'CREATE SCHEMA "{schema}"')
        PostgresLedger(urls[0]).close()  # same schema and indexes as the ledger's
        rows = [postgres_row(e) for e in events]
        cols = ", ".join(f'"{c}"' for c in COLUMNS)
        with psycopg.connect(urls[0]) as conn:
            t0 = time.perf_counter()
            with conn.cursor() as cur, cur.copy(f"COPY {TABLE} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            conn.commit()
            raw_s = time.perf_counter() - t0
        baseline = rate(n, raw_s)
        print(f"PostgreSQL ({n:,} events, batches of {batch})")
        print(f"  {'raw psycopg COPY, one transaction':<44} {baseline:>12,.0f} events/s")
        report("Ledger.append (COPY → INSERT … ON CONFLICT)", n, through_ledger(urls[1], events, batch), baseline)
        many = PostgresLedger(urls[2], insert_method="executemany")
        try:
            secs = timed(lambda: [many.append(events[i : i + batch]) for i in range(0, n, batch)])
        finally:
            many.close()
        report("Ledger.append (executemany, pipelined)", n, secs, baseline)
        report("LedgerWriter submit → close", n, through_writer(urls[3], events, batch, tmp / "pgs"), baseline)
    finally:
        for schema in schemas:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    events = make_events(args.events)
    with tempfile.TemporaryDirectory() as tmp:
        bench_sqlite(events, args.batch, Path(tmp))
        bench_postgres(args.postgres_url, events, args.batch, Path(tmp))


if __name__ == "__main__":
    main()
