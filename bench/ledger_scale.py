"""Report queries on a 10M-event ledger: spend answered from the rollups vs the same query as a full scan of the
events, in the same run, on SQLite and PostgreSQL. Prints each query's time both ways, the ratio, and checks the
two answers are identical.

The ledger is generated straight into the database (executemany in large transactions for SQLite, COPY for
PostgreSQL), through the ledger's own row encoders, audit-chain links and rollup deltas (the case summary built as
its migration builds it), so it is the ledger that `Ledger.append` would have built, only faster to make. The
traffic is shaped like a deployment's: agents that belong to one team and workflow, sessions of 5–40 calls for one
tenant and user, a primary and a fallback model per agent, an outcome on a session's last call, a few errors and
refusals.

    .venv/bin/python bench/ledger_scale.py [--events 10000000] [--days 90] [--backends sqlite,postgres]
        [--sqlite-path /tmp/fiscus-scale.db] [--postgres-url postgresql://postgres@127.0.0.1:5432/test] [--schema S]
        [--sql-load] [--keep] [--reuse] [--no-scan]

Measured 2026-12-07 on 10M events (--sql-load, 90 days, --reuse, --keep, --no-scan, best of 2), on a quiet
2-core machine (load average 1.4-2.4). "Before" is the code with the case summary only (c33227e); "after" adds the
cost, token and call bins (`fiscus.ledger.case_bins`: the database counts each group's sessions per bin, and only
the bins that hold an asked position are read, so ranks stay exact), spend grouped by integer day or hour, one read
per window shared by its groupings (`regroup`) and windows that end inside a bucket read as the bucket less its
tail (`plan_window`). Same ledger, the two sides alternated; wall / in-process CPU ms:

    query                                              SQLite before → after     PostgreSQL before → after
    report --since 30d --by agent,model                   588 /  584 →  552 / 551      113 /   5 →  111 /   5
    report --where team=growth --since 90d --by tenant    249 /  248 →   47 /  47      110 /  24 →   24 /   9
    weekly: case P50/P95 of the week (3 dimensions)       222 /  222 →  102 / 102      176 / 129 →   57 /  24
    weekly: case P50/P95 of the 4 prior weeks             952 /  951 →  401 / 400      727 / 529 →  193 /  75
    alerts: hourly spend, 7 days --by hour                632 /  632 →  538 / 538      379 /  26 →  337 /  31
    alerts: median session, 7 days by task_class          109 /  109 →   59 /  59       91 /  54 →   31 /   6
    dashboard: today / 7 days / month to date, total      534 /  531 →   35 /  35      125 /   2 →   13 /   1
    dashboard: month to date --by workflow                592 /  592 →   41 /  41      135 /   7 →   18 /   4
    dashboard: 30d --by day,team                          679 /  678 →  561 / 561      410 /  35 →  303 /  32
    forecast --since 30d --by workflow                    535 /  534 →  634 / 633      699 / 540 →  232 /  30
    whole weekly review 2026-W13 (all its queries)      4,778 / 4,774 → 2,413 / 2,410  3,035 / 1,202 → 1,369 / 474
    whole dashboard summary (all its queries)           1,569 / 1,569 → 1,011 / 1,011    588 /  16 →  480 /  65

Every single query is under the targets (1 s PostgreSQL, 2 s SQLite). The whole weekly review is not: it adds up
35 reads, and most of its time is the hourly-spend alert's 7-day baseline and the 30-day reads, which
aggregate the hourly rollup's rows (one per hour and combination of every dimension) in the database. A coarser
tier (per day) or a narrow hourly rollup for the alert is the next step. Every answer equals the full scan
(checked at 60k events, both backends, both loaders).

Earlier (2026-12-06, loaded machine): the case summary itself took PostgreSQL's cases --since 30d from 11,397 to
367 ms, cost per outcome month to date from 14,143 to 357 ms and the whole dashboard summary from 15,090 to 3,132.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from fiscus.attribution import Attribution
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.ledger import Ledger, open_ledger
from fiscus.ledger.base import MONEY_CONTEXT
from fiscus.ledger.chain import ChainWriter, with_links
from fiscus.ledger.rollup import Delta, RollupKey, deltas
from fiscus.ledger.rows import sqlite_row
from fiscus.ledger.sessions import SESSION_COLUMNS, SESSION_TABLE, SessionDelta, SessionKey, session_deltas
from fiscus.pricing.cost import Cost
from fiscus.usage.model import Usage
from scale_queries import checks  # bench/ is on the path when a bench runs
from scale_sql_load import fill_case_summary

START = datetime(2026, 1, 1, tzinfo=UTC)
# agent → (team, workflow, task_class, primary model, fallback model)
AGENTS = {
    "triage": ("support", "ticket-triage", "classify", "gpt-4.1-mini", "gpt-4.1"),
    "resolver": ("support", "ticket-resolution", "resolve", "claude-sonnet-4-5", "claude-haiku-4-5"),
    "researcher": ("growth", "lead-research", "research", "gpt-4.1", "gpt-4.1-mini"),
    "qualifier": ("growth", "lead-qualification", "classify", "claude-haiku-4-5", "claude-sonnet-4-5"),
    "writer": ("growth", "outreach", "draft", "claude-sonnet-4-5", "gpt-4.1"),
    "coder": ("platform", "code-review", "review", "claude-sonnet-4-5", "gpt-4.1"),
    "planner": ("platform", "incident-plan", "plan", "gpt-4.1", "claude-sonnet-4-5"),
    "searcher": ("search", "query-rewrite", "classify", "gpt-4.1-mini", "claude-haiku-4-5"),
    "summariser": ("search", "doc-summary", "summarise", "claude-haiku-4-5", "gpt-4.1-mini"),
    "analyst": ("finance", "spend-analysis", "research", "gpt-4.1", "claude-sonnet-4-5"),
}
PRICES = {  # $ per token: input, cache read, output
    "gpt-4.1": (Decimal("0.000002"), Decimal("0.0000005"), Decimal("0.000008")),
    "gpt-4.1-mini": (Decimal("0.0000004"), Decimal("0.0000001"), Decimal("0.0000016")),
    "claude-sonnet-4-5": (Decimal("0.000003"), Decimal("0.0000003"), Decimal("0.000015")),
    "claude-haiku-4-5": (Decimal("0.000001"), Decimal("0.0000001"), Decimal("0.000005")),
}
OUTCOMES = ("resolved", "resolved", "resolved", "escalated", "escalated", "failed")


def generate(n: int, days: int, seed: int = 11) -> Iterator[CostEvent]:
    """`n` events spread evenly over `days`, in time order, session by session."""
    rng = random.Random(seed)
    agents = list(AGENTS)
    step = days * 86_400_000_000 / n  # µs between calls
    made, clock = 0, 0.0
    session = 0
    while made < n:
        session += 1
        agent = rng.choice(agents)
        team, workflow, task_class, primary, fallback = AGENTS[agent]
        tenant, user = f"tenant-{rng.randrange(40):02d}", f"user-{rng.randrange(5000)}"
        env = "prod" if rng.random() < 0.95 else "staging"
        calls = min(rng.randint(5, 40), n - made)
        for i in range(calls):
            clock += step
            model = primary if rng.random() < 0.8 else fallback
            p_in, p_cache, p_out = PRICES[model]
            tin, cached, tout = rng.randint(200, 30_000), rng.randint(0, 20_000), rng.randint(20, 2_000)
            draw = rng.random()
            status = CallStatus.OK if draw < 0.97 else CallStatus.ERROR if draw < 0.99 else CallStatus.BLOCKED
            if status is not CallStatus.OK:
                tin = cached = tout = 0
            at = START + timedelta(microseconds=int(clock))
            yield CostEvent(
                provider="openai" if model.startswith("gpt") else "anthropic",
                requested_model=primary,
                served_model=model,
                usage=Usage(input_tokens=tin, cache_read_tokens=cached, output_tokens=tout),
                cost=Cost(input=tin * p_in, cache_read=cached * p_cache, output=tout * p_out),
                attribution=Attribution(
                    organization="acme",
                    team=team,
                    agent=agent,
                    workflow=workflow,
                    task_class=task_class,
                    session=f"s-{session}",
                    tenant=tenant,
                    user=user,
                    environment=env,
                    api_key=f"key-{agent}",
                    outcome=rng.choice(OUTCOMES) if i == calls - 1 else None,
                ),
                status=status,
                id=f"evt-{made + i:010d}",
                timestamp=at,
                latency_ms=rng.randint(200, 9_000),
                decision="allow",
            )
        made += calls


def chunks(events: Iterator[CostEvent], size: int) -> Iterator[list[CostEvent]]:
    batch: list[CostEvent] = []
    for event in events:
        batch.append(event)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def merge_deltas(into: dict[RollupKey, Delta], batch: list[CostEvent]) -> None:
    add = MONEY_CONTEXT.add
    for key, d in deltas(batch):
        have = into.get(key)
        if have is None:
            into[key] = d
        else:
            have.counts = [x + y for x, y in zip(have.counts, d.counts, strict=True)]
            have.money = [add(x, y) for x, y in zip(have.money, d.money, strict=True)]


class Loader:
    """Writes generated batches into one backend: the rows with their chain links, then the rollups and head."""

    name = ""

    def __init__(self) -> None:
        self.chain = ChainWriter("bench-loader")
        self.rollup: dict[RollupKey, Delta] = {}
        self.sessions: dict[SessionKey, SessionDelta] = {}

    def add(self, batch: list[CostEvent]) -> None:
        links, head = self.chain.extend(batch)
        self.chain.advance(head)
        self.write(batch, links)
        merge_deltas(self.rollup, batch)
        for key, d in session_deltas(batch):
            have = self.sessions.get(key)
            if have is None:
                self.sessions[key] = d
            else:
                have.requests, have.tokens = have.requests + d.requests, have.tokens + d.tokens
                have.first_ts, have.cost = min(have.first_ts, d.first_ts), MONEY_CONTEXT.add(have.cost, d.cost)

    def session_rows(self) -> Iterator[tuple[Any, ...]]:
        for k, d in sorted(self.sessions.items()):
            yield (k[0], k[1], *k[2], d.requests, d.tokens, d.first_ts, d.cost)

    def write(self, batch: list[CostEvent], links: list[Any]) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        raise NotImplementedError


class SqliteLoader(Loader):
    name = "SQLite"

    def __init__(self, path: Path) -> None:
        from fiscus.ledger.sqlite import INSERT, UPSERT_HEAD, _money_add

        super().__init__()
        self.path = path
        path.unlink(missing_ok=True)
        open_ledger(f"sqlite:///{path}").close()  # the schema, every migration
        self.insert, self.head_sql = INSERT, UPSERT_HEAD
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.create_function("fiscus_money_add", 2, _money_add)
        self.conn.execute("PRAGMA synchronous = OFF")  # a bulk load: durability comes at the final COMMIT

    def write(self, batch: list[CostEvent], links: list[Any]) -> None:
        self.conn.execute("BEGIN")
        self.conn.executemany(self.insert, with_links([sqlite_row(e) for e in batch], links))
        self.conn.execute("COMMIT")

    def finish(self) -> None:
        from fiscus.ledger.limbs import row_limbs
        from fiscus.ledger.sqlite import UPSERT_ROLLUP, UPSERT_SESSIONS

        rows = []
        for k, d in sorted(self.rollup.items()):
            parts, exact = row_limbs(d.money)
            rows.append((*k[:2], *k[2], *d.counts, *(str(m) for m in d.money), *parts, exact))
        sessions = []
        for row in self.session_rows():
            parts, exact = row_limbs(row[-1:])
            sessions.append((*row[:-1], str(row[-1]), *parts, exact))
        self.conn.execute("BEGIN")
        self.conn.executemany(UPSERT_ROLLUP, rows)
        self.conn.executemany(UPSERT_SESSIONS, sessions)
        head = self.chain.head
        self.conn.execute(self.head_sql, (head.chain, head.seq, head.hash))
        self.conn.execute("COMMIT")
        self.conn.execute("ANALYZE")
        self.conn.close()
        fill_case_summary(f"sqlite:///{self.path}")


class PostgresLoader(Loader):
    name = "PostgreSQL"

    def __init__(self, url: str) -> None:
        import psycopg

        from fiscus.ledger.postgres import COPY_DIRECT, PostgresLedger

        super().__init__()
        self.url = url
        PostgresLedger(url).close()
        self.copy_sql = COPY_DIRECT
        self.conn = psycopg.connect(url, autocommit=True)

    def write(self, batch: list[CostEvent], links: list[Any]) -> None:
        from fiscus.ledger.postgres import postgres_row

        with self.conn.cursor() as cur, cur.copy(self.copy_sql) as copy:
            for row in with_links([postgres_row(e) for e in batch], links):
                copy.write_row(row)

    def finish(self) -> None:
        from fiscus.ledger.rollup import COUNT_COLUMNS, ROLLUP_KEYS, ROLLUP_MONEY, ROLLUP_SAVINGS, ROLLUP_TABLE

        names = ("grain", "bucket", *ROLLUP_KEYS, *COUNT_COLUMNS, *ROLLUP_MONEY, *ROLLUP_SAVINGS)
        columns = ", ".join(f'"{c}"' for c in names)
        with self.conn.cursor() as cur, cur.copy(f"COPY {ROLLUP_TABLE} ({columns}) FROM STDIN") as copy:
            for k, d in sorted(self.rollup.items()):
                copy.write_row((*k[:2], *k[2], *d.counts, *d.money))
        names = ", ".join(f'"{c}"' for c in SESSION_COLUMNS)
        with self.conn.cursor() as cur, cur.copy(f"COPY {SESSION_TABLE} ({names}) FROM STDIN") as copy:
            for row in self.session_rows():
                copy.write_row(row)
        head = self.chain.head
        self.conn.execute("INSERT INTO ledger_chains (chain, seq, hash) VALUES (%s, %s, %s)", (head.chain, head.seq,
                                                                                               head.hash))  # fmt: skip
        self.conn.execute("ANALYZE")
        self.conn.close()
        fill_case_summary(self.url)


def load(loaders: list[Loader], n: int, days: int) -> None:
    t0 = time.perf_counter()
    done = 0
    for batch in chunks(generate(n, days), 50_000):
        for loader in loaders:
            loader.add(batch)
        done += len(batch)
        if done % 1_000_000 == 0:
            print(f"  generated {done:,} events ({time.perf_counter() - t0:,.0f} s)", flush=True)
    for loader in loaders:
        loader.finish()
    print(f"  loaded {n:,} events into {', '.join(x.name for x in loaders)} in {time.perf_counter() - t0:,.0f} s")


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """The best wall time of `repeat` runs, the in-process CPU time of that run (a shared machine's load
    inflates the wall, not the CPU; PostgreSQL's own work is in the wall only), and the answer."""
    times, result = [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        times.append((time.perf_counter() - t0, time.process_time() - c0))
    wall, cpu = min(times)
    return wall, cpu, result


def time_queries(ledger: Ledger, name: str, end: datetime, repeat: int, limit: float, scan: bool) -> None:
    what = "vs full scan of the events (once), same query, same run" if scan else "(no scan baseline: --no-scan)"
    print(f"{name}: rollup (best of {repeat}, wall / in-process CPU) {what}; load average {os.getloadavg()[0]:.1f}")
    worst = 0.0
    for check in checks(ledger, end):
        fast, cpu, answer = best(check.fast, repeat)
        timed = f"  {check.label:<56} {fast * 1000:>8,.0f} / {cpu * 1000:>6,.0f} ms"
        worst = max(worst, fast)
        if check.slow is None or not scan:
            print(timed, flush=True)
            continue
        slow, _, scanned = best(check.slow, 1)
        verdict = "same answer" if check.normal(answer) == check.normal(scanned) else "DIFFERENT ANSWER"
        print(f"{timed}  scan {slow:>7,.1f} s  {slow / fast:>7,.0f}x  {verdict}", flush=True)
    print(f"  slowest {worst * 1000:,.0f} ms (target under {limit:g} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--sqlite-path", type=Path, default=None, help="Default: fiscus-scale.db in the temp dir.")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--keep", action="store_true", help="Keep the generated ledgers (and reuse with --reuse).")
    parser.add_argument("--reuse", action="store_true", help="Query ledgers a previous --keep run left.")
    parser.add_argument("--schema", default="fiscus_bench_scale", help="PostgreSQL schema of the generated ledger.")
    parser.add_argument(
        "--sql-load", action="store_true", help="Generate inside the database (bench/scale_sql_load.py)."
    )
    parser.add_argument("--no-scan", action="store_true", help="Time the rollup answers only (no scan baseline).")
    args = parser.parse_args()
    backends = {b.strip() for b in args.backends.split(",") if b.strip()}
    end = START + timedelta(days=args.days) - timedelta(minutes=23)  # "now": not on an hour
    sqlite_path = args.sqlite_path or Path(tempfile.gettempdir()) / "fiscus-scale.db"
    pg_url, schema, admin = args.postgres_url, args.schema, None
    if "postgres" in backends:
        import psycopg

        admin = psycopg.connect(args.postgres_url, autocommit=True)
        if not args.reuse:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            admin.execute(f'CREATE SCHEMA "{schema}"')
        sep = "&" if "?" in pg_url else "?"
        pg_url = f"{pg_url}{sep}options=-csearch_path%3D{schema}"
    try:
        if args.sql_load and not args.reuse:
            from scale_sql_load import load_postgres, load_sqlite

            t0 = time.perf_counter()
            if "sqlite" in backends:
                load_sqlite(sqlite_path, args.events, args.days)
            if "postgres" in backends:
                load_postgres(pg_url, args.events, args.days)
            print(f"  loaded {args.events:,} events in the database(s) in {time.perf_counter() - t0:,.0f} s")
        elif not args.reuse:
            loaders: list[Loader] = []
            if "sqlite" in backends:
                loaders.append(SqliteLoader(sqlite_path))
            if "postgres" in backends:
                loaders.append(PostgresLoader(pg_url))
            load(loaders, args.events, args.days)
        if "sqlite" in backends:
            with open_ledger(f"sqlite:///{sqlite_path}") as ledger:
                time_queries(ledger, f"SQLite, {args.events:,} events", end, args.repeat, 2.0, not args.no_scan)
        if "postgres" in backends:
            with open_ledger(pg_url) as ledger:
                time_queries(ledger, f"PostgreSQL, {args.events:,} events", end, args.repeat, 1.0, not args.no_scan)
    finally:
        if admin is not None:
            if not args.keep:
                admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            admin.close()
        if not args.keep:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{sqlite_path}{suffix}").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
