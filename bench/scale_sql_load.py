"""Generate the 10M-event ledger inside the database (`bench/ledger_scale.py --sql-load`): SQL writes the events from a
row number (a recursive CTE in SQLite, generate_series in PostgreSQL) and then builds the spend and session rollups
and the case summary from them with GROUP BY, so a busy machine loads 10M events in minutes, not hours.

The traffic has the Python generator's shape — ten agents with their team, workflow, task class and a primary and
fallback model, sessions of 22 calls for one tenant and user, an outcome on a session's last call, 3 % errors
and refusals — drawn from multiplicative hashes of the row number instead of a random stream. Amounts are
integer pico-dollars written with 12 decimals, which is what lets SQLite sum them natively while loading. The
rows carry no audit-chain links (the bench times queries); everything else is what `Ledger.append` stores, and
the bench checks every rollup answer against a full scan of the events.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fiscus.ledger import open_ledger
from fiscus.ledger.migrations import migrations
from fiscus.ledger.rollup import ROLLUP_KEYS
from fiscus.ledger.rows import SAVINGS_COLUMNS
from fiscus.ledger.sessions import SESSION_KEYS

START_US = 1_767_225_600_000_000  # 2026-01-01T00:00Z, as bench/ledger_scale.py's START
PICO = 1_000_000_000_000
AGENTS = (  # i, agent, team, workflow, task_class, primary, fallback
    (0, "triage", "support", "ticket-triage", "classify", "gpt-4.1-mini", "gpt-4.1"),
    (1, "resolver", "support", "ticket-resolution", "resolve", "claude-sonnet-4-5", "claude-haiku-4-5"),
    (2, "researcher", "growth", "lead-research", "research", "gpt-4.1", "gpt-4.1-mini"),
    (3, "qualifier", "growth", "lead-qualification", "classify", "claude-haiku-4-5", "claude-sonnet-4-5"),
    (4, "writer", "growth", "outreach", "draft", "claude-sonnet-4-5", "gpt-4.1"),
    (5, "coder", "platform", "code-review", "review", "claude-sonnet-4-5", "gpt-4.1"),
    (6, "planner", "platform", "incident-plan", "plan", "gpt-4.1", "claude-sonnet-4-5"),
    (7, "searcher", "search", "query-rewrite", "classify", "gpt-4.1-mini", "claude-haiku-4-5"),
    (8, "summariser", "search", "doc-summary", "summarise", "claude-haiku-4-5", "gpt-4.1-mini"),
    (9, "analyst", "finance", "spend-analysis", "research", "gpt-4.1", "claude-sonnet-4-5"),
)
PRICES = (  # model, provider, pico-dollars per input, cache-read and output token
    ("gpt-4.1", "openai", 2_000_000, 500_000, 8_000_000),
    ("gpt-4.1-mini", "openai", 400_000, 100_000, 1_600_000),
    ("claude-sonnet-4-5", "anthropic", 3_000_000, 300_000, 15_000_000),
    ("claude-haiku-4-5", "anthropic", 1_000_000, 100_000, 5_000_000),
)
QUOTED_SESSION_KEYS = ", ".join(f'"{k}"' for k in SESSION_KEYS)
OUTCOMES = ("resolved", "resolved", "resolved", "escalated", "escalated", "failed")
COLUMNS = (
    "id", "ts", "provider", "requested_model", "served_model", "status", "organization", "team", "agent", "workflow",
    "task_class", "session", "tenant", "user", "environment", "api_key", "outcome", "input_tokens",
    "cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens", "output_tokens", "reasoning_tokens",
    "usage_estimated", "input_usd", "cache_read_usd", "cache_write_5m_usd", "cache_write_1h_usd", "output_usd",
    "tools_usd", "fallback_price", "latency_ms", "batch", "streamed", "decision",
)  # fmt: skip
QUOTED = ", ".join(f'"{c}"' for c in COLUMNS)


def _values(rows: tuple[tuple[Any, ...], ...]) -> str:
    return ", ".join("(" + ", ".join(repr(v) for v in row) + ")" for row in rows)


def _select(pg: bool, first: int, last: int, step: int) -> str:
    """The events with row numbers first..last as one SELECT (and the CTEs it needs)."""
    numbers = (
        f"g(n) AS (SELECT generate_series({first}, {last})::bigint)"
        if pg
        else f"g(n) AS (SELECT {first} UNION ALL SELECT n + 1 FROM g WHERE n < {last})"
    )
    outcomes = " ".join(f"WHEN {i} THEN '{o}'" for i, o in enumerate(OUTCOMES))
    false = "FALSE" if pg else "0"
    if pg:
        ts = f"to_timestamp({START_US // 1_000_000}) + (x.n * {step}) * interval '1 microsecond'"
        money = "({v} * 0.000000000001)"
        tenant, ident = "lpad(((x.hs / 10) % 40)::text, 2, '0')", "lpad(x.n::text, 10, '0')"
        zero = "0"
    else:
        ts = f"{START_US} + x.n * {step}"
        money = "printf('%d.%012d', ({v}) / {p}, ({v}) % {p})".replace("{p}", str(PICO))
        tenant, ident = "printf('%02d', (x.hs / 10) % 40)", "printf('%010d', x.n)"
        zero = "'0'"
    ok = "(x.r % 100 < 97)"
    tin = f"(CASE WHEN {ok} THEN 200 + x.r2 % 29800 ELSE 0 END)"
    cached = f"(CASE WHEN {ok} THEN (x.r2 / 29800) % 20000 ELSE 0 END)"
    tout = f"(CASE WHEN {ok} THEN 20 + (x.r / 100) % 1980 ELSE 0 END)"
    cells = [
        f"'evt-' || {ident}", ts, "p.provider", "a.prim", "p.model",
        "CASE WHEN x.r % 100 < 97 THEN 'ok' WHEN x.r % 100 < 99 THEN 'error' ELSE 'blocked' END",
        "'acme'", "a.team", "a.agent", "a.workflow", "a.task_class", "'s-' || x.s", f"'tenant-' || {tenant}",
        "'user-' || ((x.hs / 400) % 5000)", "CASE WHEN (x.hs / 2000000) % 20 = 0 THEN 'staging' ELSE 'prod' END",
        "'key-' || a.agent", f"CASE WHEN x.n % 22 = 21 THEN CASE (x.hs / 7) % 6 {outcomes} END END",
        tin, cached, "0", "0", tout, "0", false,
        money.format(v=f"{tin} * p.p_in"), money.format(v=f"{cached} * p.p_cache"), zero, zero,
        money.format(v=f"{tout} * p.p_out"), zero, false, "200 + x.r2 % 8800", false, false, "'allow'",
    ]  # fmt: skip
    return (
        f"WITH RECURSIVE {numbers}, "
        f"agents(i, agent, team, workflow, task_class, prim, fall) AS (VALUES {_values(AGENTS)}), "
        f"prices(model, provider, p_in, p_cache, p_out) AS (VALUES {_values(PRICES)}) "
        f"SELECT {', '.join(cells)} FROM (SELECT n, n / 22 AS s, ((n / 22) * 2654435761 + 97) % 4294967296 AS hs, "
        "(n * 2246822519 + 3266489917) % 4294967296 AS r, (n * 3266489917 + 374761393) % 4294967296 AS r2 "
        "FROM g) x JOIN agents a ON a.i = x.hs % 10 "
        "JOIN prices p ON p.model = CASE WHEN x.r % 5 = 0 THEN a.fall ELSE a.prim END"
    )


def _in_chunks(n: int, run: Callable[[int, int], None], label: str) -> None:
    t0, chunk = time.perf_counter(), 1_000_000
    for first in range(0, n, chunk):
        run(first, min(first + chunk, n) - 1)
        print(f"  {label}: {min(first + chunk, n):,} events ({time.perf_counter() - t0:,.0f} s)", flush=True)


def load_sqlite(path: Path, n: int, days: int) -> None:
    path.unlink(missing_ok=True)
    open_ledger(f"sqlite:///{path}").close()  # the schema, every migration
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    step = days * 86_400_000_000 // n
    insert = f"INSERT INTO cost_events ({QUOTED}) "

    def run(first: int, last: int) -> None:
        conn.execute("BEGIN")
        conn.execute(insert + _select(False, first, last, step))
        conn.execute("COMMIT")

    _in_chunks(n, run, "SQLite")
    keys = ", ".join(f"COALESCE({k}, '')" for k in ROLLUP_KEYS)
    aliased = ", ".join(f"COALESCE({k}, '') AS {k}" for k in ROLLUP_KEYS)
    pico = "CAST(replace({c}, '.', '') AS INTEGER)"
    conn.execute("BEGIN")
    conn.execute(
        f"CREATE TEMP TABLE h AS SELECT ts - ts % 3600000000 AS bucket, {aliased}, "
        "COUNT(*) AS requests, SUM(input_tokens) AS input_tokens, SUM(cache_read_tokens) AS cache_read_tokens, "
        "SUM(output_tokens) AS output_tokens, "
        f"SUM({pico.format(c='input_usd')}) AS p_in, SUM({pico.format(c='cache_read_usd')}) AS p_cr, "
        f"SUM({pico.format(c='output_usd')}) AS p_out FROM cost_events GROUP BY 1, {keys}"
    )  # fmt: skip
    names = ", ".join(ROLLUP_KEYS)
    text = "printf('%d.%012d', {v} / " + str(PICO) + ", {v} % " + str(PICO) + ")"
    savings = ", ".join(["'0'"] * len(SAVINGS_COLUMNS))
    limb = "{v} / 1000000, ({v} % 1000000) * 1000000"
    zeros = ", ".join(["0"] * (2 * (2 + len(SAVINGS_COLUMNS))))
    rollup_columns = (
        f"grain, bucket, {names}, requests, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, "
        "reasoning_tokens, estimated_events, fallback_price_events, input_usd, cache_read_usd, cache_write_usd, "
        f"output_usd, tools_usd, {', '.join(SAVINGS_COLUMNS)}, input_usd_hi, input_usd_lo, cache_read_usd_hi, "
        "cache_read_usd_lo, output_usd_hi, output_usd_lo, cache_write_usd_hi, cache_write_usd_lo, tools_usd_hi, "
        f"tools_usd_lo, {', '.join(f'{c}_hi, {c}_lo' for c in SAVINGS_COLUMNS)}, exact"
    )
    for grain, bucket in (
        ("h", "bucket"),
        ("d", "bucket - bucket % 86400000000"),
        ("m", "CAST(strftime('%s', bucket / 1000000, 'unixepoch', 'start of month') AS INTEGER) * 1000000"),
    ):
        conn.execute(
            f"INSERT INTO spend_rollup ({rollup_columns}) SELECT '{grain}', b, {names}, rq, ti, tc, 0, tt, 0, 0, 0, "
            f"{text.format(v='pi')}, {text.format(v='pc')}, '0', {text.format(v='po')}, '0', {savings}, "
            f"{limb.format(v='pi')}, {limb.format(v='pc')}, {limb.format(v='po')}, {zeros}, 1 "
            f"FROM (SELECT {bucket} AS b, {names}, SUM(requests) AS rq, SUM(input_tokens) AS ti, "
            "SUM(cache_read_tokens) AS tc, SUM(output_tokens) AS tt, SUM(p_in) AS pi, SUM(p_cr) AS pc, "
            f"SUM(p_out) AS po FROM h GROUP BY 1, {names})"
        )  # fmt: skip
    session_keys = [f"COALESCE(\"{k}\", '')" for k in SESSION_KEYS]
    skeys = ", ".join(session_keys)
    total = " + ".join(pico.format(c=c) for c in ("input_usd", "cache_read_usd", "output_usd"))
    conn.execute(
        f"INSERT INTO session_rollup (bucket, session, {QUOTED_SESSION_KEYS}, requests, tokens, "
        "first_ts, cost_usd, cost_usd_hi, cost_usd_lo, exact) "
        f"SELECT b, s, {', '.join(f'k{i}' for i in range(len(SESSION_KEYS)))}, rq, tk, f, {text.format(v='pt')}, "
        f"{limb.format(v='pt')}, 1 FROM (SELECT ts - ts % 3600000000 AS b, COALESCE(session, '') AS s, "
        f"{', '.join(f'{e} AS k{i}' for i, e in enumerate(session_keys))}, COUNT(*) AS rq, "
        "SUM(input_tokens + cache_read_tokens + cache_write_5m_tokens + cache_write_1h_tokens + output_tokens) AS tk, "
        f"MIN(ts) AS f, SUM({total}) AS pt FROM cost_events GROUP BY 1, 2, {skeys})"
    )  # fmt: skip
    # The case summary as migration 10 builds it, with the cost summed natively as the rollups above are.
    (fill,) = (s for m in migrations("sqlite") if m.version == 10 for s in m.statements if "GROUP BY session" in s)
    cost = f"SUM({total})"
    native = fill.replace(
        "label, mixed, cost_usd)", "label, mixed, cost_usd, cost_usd_hi, cost_usd_lo, exact)"
    ).replace(
        "fiscus_cost_sum(input_usd, cache_read_usd, cache_write_5m_usd, cache_write_1h_usd, output_usd, tools_usd)",
        f"{text.format(v=cost)}, {limb.format(v=cost)}, 1",
    )
    assert native.count("cost_usd_hi") == 1 and "fiscus_" not in native, "migration 10 changed: update the bench"
    conn.execute(native)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def load_postgres(url: str, n: int, days: int) -> None:
    import psycopg

    from fiscus.ledger.postgres import PostgresLedger

    PostgresLedger(url).close()
    conn = psycopg.connect(url, autocommit=True)
    step = days * 86_400_000_000 // n
    insert = f"INSERT INTO cost_events ({QUOTED}) "
    _in_chunks(n, lambda first, last: conn.execute(insert + _select(True, first, last, step)), "PostgreSQL")
    names = ", ".join(ROLLUP_KEYS)
    keys = ", ".join(f"COALESCE({k}, '')" for k in ROLLUP_KEYS)
    money = ("input_usd", "cache_read_usd", "cache_write_usd", "output_usd", "tools_usd", *SAVINGS_COLUMNS)
    columns = (
        f"grain, bucket, {names}, requests, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, "
        f"reasoning_tokens, estimated_events, fallback_price_events, {', '.join(money)}"
    )
    zero_savings = ", ".join(["0"] * len(SAVINGS_COLUMNS))
    hour = "(EXTRACT(EPOCH FROM date_trunc('hour', ts AT TIME ZONE 'UTC')) * 1000000)::bigint"
    conn.execute(
        f"INSERT INTO spend_rollup ({columns}) SELECT 'h', {hour}, {keys}, COUNT(*), SUM(input_tokens), "
        "SUM(cache_read_tokens), SUM(cache_write_5m_tokens + cache_write_1h_tokens), SUM(output_tokens), "
        "SUM(reasoning_tokens), COUNT(*) FILTER (WHERE usage_estimated), COUNT(*) FILTER (WHERE fallback_price), "
        "SUM(input_usd), SUM(cache_read_usd), SUM(cache_write_5m_usd + cache_write_1h_usd), SUM(output_usd), "
        f"SUM(tools_usd), {zero_savings} FROM cost_events GROUP BY 2, {keys}"
    )  # fmt: skip
    sums = ", ".join(f"SUM({c})" for c in ("requests", "input_tokens", "cache_read_tokens", "cache_write_tokens",
                                           "output_tokens", "reasoning_tokens", "estimated_events",
                                           "fallback_price_events", *money))  # fmt: skip
    month = (
        "(EXTRACT(EPOCH FROM date_trunc('month', to_timestamp(bucket / 1000000) AT TIME ZONE 'UTC')) * 1000000)::bigint"
    )
    for grain, source, bucket in (("d", "h", "bucket - bucket % 86400000000"), ("m", "d", month)):
        conn.execute(
            f"INSERT INTO spend_rollup ({columns}) SELECT '{grain}', {bucket}, {names}, {sums} FROM spend_rollup "
            f"WHERE grain = '{source}' GROUP BY 2, {names}"
        )
    # The session rollup exactly as migration 8 builds it from stored events.
    (fill,) = (sql for m in migrations("postgres") if m.version == 8 for sql in m.statements if "INSERT" in sql)
    conn.execute(fill)
    conn.execute("ANALYZE")
    conn.close()
    fill_case_summary(url)


def fill_case_summary(url: str) -> None:
    """Build the case summary from the loaded events exactly as migration 10 builds it from stored events (through
    the ledger's own connection: SQLite's fill uses the exact-sum functions the ledger registers)."""
    backend = "sqlite" if url.startswith("sqlite") else "postgres"
    (migration,) = (m for m in migrations(backend) if m.version == 10)
    fill = [*(s for s in migration.statements if not s.startswith("CREATE")), "ANALYZE case_summary"]
    t0 = time.perf_counter()
    with open_ledger(url) as ledger:
        if backend == "sqlite":
            conn = ledger._conn  # type: ignore[attr-defined]
            for statement in fill:
                conn.execute(statement)
        else:
            for statement in fill:
                ledger._run(lambda c, s=statement: c.execute(s))  # type: ignore[attr-defined]
    print(f"  case summary of {backend} built in {time.perf_counter() - t0:,.0f} s", flush=True)
