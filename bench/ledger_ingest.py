"""Ledger ingest rate: events/s through `Ledger.append` (batches) and `LedgerWriter`, beside the raw driver's
best bulk insert of the same rows into the same schema in the same run (sqlite3 executemany in one
transaction; psycopg COPY in one transaction). Prints each rate and its ratio to the raw baseline.

Each figure is the best of `--repeat` rounds, the rounds interleaved, so a busy machine skews them alike.

    .venv/bin/python bench/ledger_ingest.py [--events 20000] [--repeat 3] [--postgres-url postgresql://postgres@127.0.0.1/test]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from fiscus.attribution import Attribution
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.ledger import Ledger, LedgerWriter, open_ledger
from fiscus.ledger.postgres import PostgresLedger, postgres_row
from fiscus.ledger.rows import EVENT_COLUMNS, TABLE, sqlite_row
from fiscus.pricing.cost import Cost
from fiscus.usage.model import Usage

TEAMS = ("growth", "search", "support", "platform")
AGENTS = ("triage", "coder", "writer", "planner", "reviewer")
MODELS = ("gpt-4o-mini", "gpt-4.1", "claude-sonnet-4-5", "claude-haiku-4-5")
WRITERS = 4
# The parts of a SQLite append, added one at a time (bench_sqlite's `stages`), to show what each costs.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("  rows built + inserted, in batches", ()),
    ("  + audit chain links", ("chain",)),
    ("  + spend rollups (hour, day, month)", ("chain", "rollup")),
    ("  + session rollup", ("chain", "rollup", "sessions")),
    ("  + case summary (= Ledger.append's work)", ("chain", "rollup", "sessions", "summary")),
)


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


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    c0 = time.process_time()
    fn()
    CPU_SECONDS.append(time.process_time() - c0)
    return time.perf_counter() - t0


# CPU seconds of this process for the last `timed` call: on a busy machine wall time swells with other work,
# CPU time much less, so SQLite (all in-process) is also reported per CPU second.
CPU_SECONDS: list[float] = []


def append_in_batches(ledger: Ledger, events: list[CostEvent], batch: int) -> float:
    def run() -> None:
        new = sum(ledger.append(events[i : i + batch]) for i in range(0, len(events), batch))
        assert new == len(events), (new, len(events))

    return timed(run)


def write_through_writer(ledger: Ledger, events: list[CostEvent], batch: int, spill: Path) -> float:
    def run() -> None:
        writer = LedgerWriter(ledger, batch_size=batch, spill_path=spill)
        for event in events:
            writer.submit(event)
        writer.close()
        assert writer.written == len(events), (writer.written, len(events))

    return timed(run)


class Results:
    def __init__(self, *, cpu: bool) -> None:
        self.cpu = cpu
        self.best: dict[str, float] = {}
        self.best_cpu: dict[str, float] = {}

    def add(self, name: str, n: int, seconds: float) -> None:
        self.best[name] = max(self.best.get(name, 0.0), n / seconds)
        self.best_cpu[name] = max(self.best_cpu.get(name, 0.0), n / max(CPU_SECONDS[-1], 1e-9))

    def print(self, title: str, baseline_name: str) -> None:
        baseline, baseline_cpu = self.best[baseline_name], self.best_cpu[baseline_name]
        print(title)
        names = [baseline_name] + [name for name in self.best if name != baseline_name]
        for name in names:
            rate = self.best[name]
            line = f"  {name:<48} {rate:>10,.0f} events/s"
            if name != baseline_name:
                line += f" {rate / baseline:5.2f}x raw"
            if self.cpu:
                cpu_rate = self.best_cpu[name]
                line += f"  | {cpu_rate:>10,.0f} events/CPU-s"
                if name != baseline_name:
                    line += f" {cpu_rate / baseline_cpu:5.2f}x raw"
            print(line)


Trial = Callable[[int], list[tuple[str, float]]]  # round number → (name, seconds) measured


def run_rounds(trials: list[Trial], repeat: int, n: int, results: Results) -> None:
    """Every trial once per round, the order rotated each round so no trial always runs first or last."""
    for r in range(repeat):
        for trial in trials[r % len(trials) :] + trials[: r % len(trials)]:
            for name, seconds in trial(r):
                results.add(name, n, seconds)


def bench_sqlite(events: list[CostEvent], batch: int, repeat: int, tmp: Path) -> None:
    n = len(events)
    results = Results(cpu=True)
    raw_name = "raw sqlite3 executemany, one transaction"
    plain_insert = f"INSERT INTO {TABLE} ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
    rows = [sqlite_row(e) for e in events]  # pre-built: the raw figure excludes building rows

    def raw(r: int) -> list[tuple[str, float]]:
        db = tmp / f"raw{r}.db"
        open_ledger(f"sqlite:///{db}").close()  # the ledger's own schema and indexes
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")

        def insert() -> None:
            conn.execute("BEGIN")
            conn.executemany(plain_insert, rows)
            conn.execute("COMMIT")

        try:
            return [(raw_name, timed(insert))]
        finally:
            conn.close()

    def append(r: int) -> list[tuple[str, float]]:
        with open_ledger(f"sqlite:///{tmp / f'ledger{r}.db'}") as ledger:
            return [(f"Ledger.append, batches of {batch}", append_in_batches(ledger, events, batch))]

    def writer(r: int) -> list[tuple[str, float]]:
        with open_ledger(f"sqlite:///{tmp / f'writer{r}.db'}") as ledger:
            return [("LedgerWriter submit → close", write_through_writer(ledger, events, batch, tmp / "s"))]

    def stage(name: str, parts: tuple[str, ...]) -> Trial:
        """Where an append's time goes: the same batches with only `parts` of its work, in a fresh ledger."""
        from fiscus.ledger.chain import ChainWriter, with_links
        from fiscus.ledger.sqlite import (
            INSERT,
            UPSERT_ROLLUP,
            UPSERT_SESSIONS,
            UPSERT_SUMMARY,
            rollup_params,
            session_params,
            summary_params,
        )

        def trial(r: int) -> list[tuple[str, float]]:
            with open_ledger(f"sqlite:///{tmp / f'stage{r}-{len(parts)}.db'}") as ledger:
                conn, chain = ledger._conn, ChainWriter()  # type: ignore[attr-defined]

                def run() -> None:
                    for i in range(0, n, batch):
                        part = events[i : i + batch]
                        conn.execute("BEGIN IMMEDIATE")
                        if "chain" in parts:
                            links, head = chain.extend(part)
                            conn.executemany(INSERT, with_links([sqlite_row(e) for e in part], links))
                            chain.advance(head)
                        else:
                            conn.executemany(plain_insert, [sqlite_row(e) for e in part])
                        if "rollup" in parts:
                            conn.executemany(UPSERT_ROLLUP, rollup_params(part))
                        if "sessions" in parts:
                            conn.executemany(UPSERT_SESSIONS, session_params(part))
                        if "summary" in parts:
                            conn.executemany(UPSERT_SUMMARY, summary_params(part))
                        conn.execute("COMMIT")

                return [(name, timed(run))]

        return trial

    run_rounds([raw, append, writer, *(stage(name, parts) for name, parts in STAGES)], repeat, n, results)
    results.print(f"SQLite, {n:,} events, best of {repeat}", raw_name)


def bench_postgres(url: str, events: list[CostEvent], batch: int, repeat: int, tmp: Path) -> None:
    try:
        import psycopg

        admin = psycopg.connect(url, autocommit=True, connect_timeout=3)
    except Exception as exc:
        print(f"PostgreSQL skipped: not reachable at {url} ({str(exc).strip().splitlines()[0]})")
        return
    n = len(events)
    results = Results(cpu=False)
    raw_name = "raw psycopg COPY, one transaction"
    copy_sql = f"COPY {TABLE} ({', '.join(f'{chr(34)}{c}{chr(34)}' for c in EVENT_COLUMNS)}) FROM STDIN"
    sep = "&" if "?" in url else "?"
    rows = [postgres_row(e) for e in events]  # pre-built: the raw figure excludes building rows
    schemas: list[str] = []

    def fresh_url() -> str:
        schema = f"fiscus_bench_{uuid.uuid4().hex[:8]}"
        admin.execute(f'CREATE SCHEMA "{schema}"')
        schemas.append(schema)
        return f"{url}{sep}options=-csearch_path%3D{schema}"

    def raw(r: int) -> list[tuple[str, float]]:
        target = fresh_url()
        PostgresLedger(target).close()  # the ledger's own schema and indexes
        with psycopg.connect(target) as conn:

            def insert() -> None:
                with conn.cursor() as cur, cur.copy(copy_sql) as copy:
                    for row in rows:
                        copy.write_row(row)
                conn.commit()

            return [(raw_name, timed(insert))]

    def append(r: int) -> list[tuple[str, float]]:
        with PostgresLedger(fresh_url()) as ledger:
            first = append_in_batches(ledger, events, batch)
            # the same events again: every batch meets stored ids, looks them up and adds nothing
            again = timed(lambda: [ledger.append(events[i : i + batch]) for i in range(0, n, batch)])
        return [(f"Ledger.append (COPY), batches of {batch}", first), ("Ledger.append, all repeats", again)]

    def executemany(r: int) -> list[tuple[str, float]]:
        with PostgresLedger(fresh_url(), insert_method="executemany") as ledger:
            return [("Ledger.append (pipelined executemany)", append_in_batches(ledger, events, batch))]

    def writer(r: int) -> list[tuple[str, float]]:
        with PostgresLedger(fresh_url()) as ledger:
            return [("LedgerWriter submit → close", write_through_writer(ledger, events, batch, tmp / "p"))]

    def concurrent(r: int) -> list[tuple[str, float]]:
        # Four processes' worth of writers on one database, each with its own connection (and audit chain).
        target = fresh_url()
        ledgers = [PostgresLedger(target) for _ in range(WRITERS)]
        shares = [events[i::WRITERS] for i in range(WRITERS)]
        try:
            start = threading.Barrier(WRITERS + 1)

            def work(ledger: Ledger, share: list[CostEvent]) -> None:
                start.wait()
                for i in range(0, len(share), batch):
                    ledger.append(share[i : i + batch])

            threads = [threading.Thread(target=work, args=pair) for pair in zip(ledgers, shares, strict=True)]
            for t in threads:
                t.start()

            def run() -> None:
                start.wait()
                for t in threads:
                    t.join()

            return [(f"{WRITERS} writers at once, Ledger.append (COPY)", timed(run))]
        finally:
            for ledger in ledgers:
                ledger.close()

    try:
        run_rounds([raw, append, executemany, writer, concurrent], repeat, n, results)
    finally:
        for schema in schemas:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()
    results.print(f"PostgreSQL, {n:,} events, best of {repeat}", raw_name)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    events = make_events(args.events)
    with tempfile.TemporaryDirectory() as tmp:
        bench_sqlite(events, args.batch, args.repeat, Path(tmp))
        bench_postgres(args.postgres_url, events, args.batch, args.repeat, Path(tmp))


if __name__ == "__main__":
    main()
