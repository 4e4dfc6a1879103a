"""`PostgresLedger`: the ledger in PostgreSQL (psycopg 3), shared by every host of a deployment.

An append is one transaction: COPY the batch straight into the table (or a pipelined `executemany`), move this
writer's chain head, add the batch to the rollups. If an id is already stored (a retried write, or another
writer storing the same event a moment ago) the primary key fails the transaction; the stored ids are then
looked up, left out, and the rest linked and written again, so nothing counts twice and the chain has no gap.
bench/ledger_ingest.py measures both insert methods against raw COPY. Money is NUMERIC, so sums are exact.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import psycopg

from fiscus.errors import StoreError
from fiscus.events.cost_event import CostEvent
from fiscus.events.outcome_event import OutcomeRecorded
from fiscus.events.policy_event import PolicyEvent
from fiscus.ledger.base import MONEY_CONTEXT
from fiscus.ledger.case_select import Picker
from fiscus.ledger.case_sql import CaseDialect
from fiscus.ledger.case_summary import SUMMARY_KEYS, recorded_upsert_sql, summary_rows, summary_upsert_sql
from fiscus.ledger.chain import CHAIN_MIGRATION, LEGACY_CHAIN, ChainWriter, with_links
from fiscus.ledger.migrations import migrations
from fiscus.ledger.outcomes import insert_sql, outcome_row
from fiscus.ledger.rollup import COUNT_COLUMNS, ROLLUP_KEYS, ROLLUP_MIGRATION, ROLLUP_MONEY, deltas
from fiscus.ledger.rows import COLUMNS, SAVINGS_COLUMNS, TABLE, event_from_row, savings_cells, tags_json, utc
from fiscus.ledger.sessions import SESSION_KEYS, session_rows, session_upsert_sql
from fiscus.ledger.sql import (
    POLICY_COLUMNS,
    POLICY_TABLE,
    SELECT_EVENTS,
    Dialect,
    SqlLedger,
    q,
    rollup_upsert_sql,
    unique_by_id,
)

_COLS = ", ".join(q(c) for c in COLUMNS)
COPY_DIRECT = f"COPY {TABLE} ({_COLS}) FROM STDIN"
INSERT_VALUES = (
    f"INSERT INTO {TABLE} ({_COLS}) VALUES ({', '.join('%s::jsonb' if c == 'tags' else '%s' for c in COLUMNS)})"
)
INSERT_OUTCOME = insert_sql("%s", conflict="on conflict")
INSERT_POLICY = (
    f"INSERT INTO {POLICY_TABLE} ({', '.join(POLICY_COLUMNS)}, chain, seq, prev_hash, hash) VALUES "
    f"({', '.join(['%s'] * (len(POLICY_COLUMNS) + 4))}) ON CONFLICT (id) DO NOTHING"
)
UPSERT_HEAD = (
    "INSERT INTO ledger_chains (chain, seq, hash) VALUES (%s, %s, %s) "
    "ON CONFLICT (chain) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash"
)
SET_LINK = f"UPDATE {TABLE} SET chain = %s, seq = %s, prev_hash = %s, hash = %s WHERE id = %s"
_PAGE = 2000
_ATTEMPTS = 5  # a batch meets ids stored meanwhile at most this often before the append gives up
_MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(hashtext('fiscus.ledger.migrate:' || COALESCE(current_schema(), '')))"

_DIALECT = Dialect(
    placeholder="%s",
    day="to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    hour="to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24')",
    money_sums="SUM(input_usd), SUM(cache_read_usd), SUM(cache_write_5m_usd + cache_write_1h_usd), SUM(output_usd), "
    "SUM(tools_usd)",
    flag_sums="COUNT(*) FILTER (WHERE usage_estimated), COUNT(*) FILTER (WHERE fallback_price)",
    ts_param=utc,
    savings_sums=", ".join(f"SUM({column})" for column in SAVINGS_COLUMNS),
    savings_cells=len(SAVINGS_COLUMNS),
    rollup_money_sums="SUM(input_usd), SUM(cache_read_usd), SUM(cache_write_usd), SUM(output_usd), SUM(tools_usd)",
    rollup_savings_sums=", ".join(f"SUM({column})" for column in SAVINGS_COLUMNS),
    money_add=lambda c: f"spend_rollup.{c} + EXCLUDED.{c}",
    tag_equals="(tags ->> '{tag}') = '{value}'",
)


def _micros(amount: Decimal) -> int:
    """Whole micro-dollars of an amount (floor), exactly as SQL's floor(amount * 1000000)."""
    n, d = amount.as_integer_ratio()
    return n * 10**6 // d


_EVENT_COST = "input_usd + cache_read_usd + cache_write_5m_usd + cache_write_1h_usd + output_usd + tools_usd"
_CASES = CaseDialect(
    cells=("c",),
    rollup="cost_usd AS c, 1 AS x",
    event=f"{_EVENT_COST} AS c, 1 AS x",
    sums="SUM(c) AS c, MIN(x) AS x",
    micros="(EXTRACT(EPOCH FROM ts) * 1000000)::bigint",
    collate=' COLLATE "C"',
    decode=lambda cells: Decimal(cells[0] or 0),
    pick=Picker(1, lambda cells: cells[0], MONEY_CONTEXT.add, lambda amount: amount, _micros),
    grouping_sets=True,
)
# The whole batch's rollup rows in one statement, one array per column: a round trip per batch, not per row.
_ARRAYS = (
    ["%s::text[]", "%s::bigint[]"]
    + ["%s::text[]"] * len(ROLLUP_KEYS)
    + ["%s::bigint[]"] * len(COUNT_COLUMNS)
    + ["%s::numeric[]"] * (len(ROLLUP_MONEY) + len(SAVINGS_COLUMNS))
)
UPSERT_ROLLUP = rollup_upsert_sql(_DIALECT, source=f"SELECT * FROM unnest({', '.join(_ARRAYS)})")
_SESSION_ARRAYS = ["%s::bigint[]"] + ["%s::text[]"] * (1 + len(SESSION_KEYS)) + ["%s::bigint[]"] * 3 + ["%s::numeric[]"]
UPSERT_SESSIONS = session_upsert_sql(
    "%s", "{a} + {b}", "LEAST({a}, {b})", source=f"SELECT * FROM unnest({', '.join(_SESSION_ARRAYS)})"
)

_SUMMARY_ARRAYS = (
    ["%s::text[]"] + ["%s::bigint[]"] * 4 + ["%s::text[]"] * (len(SUMMARY_KEYS) + 1) + ["%s::int[]", "%s::numeric[]"]
)
UPSERT_SUMMARY = summary_upsert_sql(
    "%s",
    "{a} + {b}",
    "LEAST({a}, {b})",
    "GREATEST({a}, {b})",
    source=f"SELECT * FROM unnest({', '.join(_SUMMARY_ARRAYS)})",
)
UPSERT_RECORDED = recorded_upsert_sql(
    "session = ANY(%s)", "(EXTRACT(EPOCH FROM ts) * 1000000)::bigint", ' COLLATE "C"', "0"
)


def rollup_params(events: Sequence[CostEvent]) -> tuple[list[Any], ...]:
    """The batch's rollup rows as column arrays for `UPSERT_ROLLUP`."""
    rows = [(*key[:2], *key[2], *d.counts, *d.money) for key, d in deltas(events)]
    return tuple(list(column) for column in zip(*rows, strict=True))


def session_params(events: Sequence[CostEvent]) -> tuple[list[Any], ...]:
    """The batch's session rollup rows as column arrays for `UPSERT_SESSIONS`."""
    return tuple(list(column) for column in zip(*session_rows(events), strict=True))


def summary_params(events: Sequence[CostEvent]) -> tuple[list[Any], ...] | None:
    """The batch's case summary rows as column arrays for `UPSERT_SUMMARY` (None: no call in a session)."""
    rows = summary_rows(events)
    return tuple(list(column) for column in zip(*rows, strict=True)) if rows else None


InsertMethod = Literal["copy", "executemany"]


def postgres_row(e: CostEvent) -> tuple[Any, ...]:
    """PostgreSQL: timestamptz, NUMERIC money (Decimal as is), booleans, tags as JSON text for a jsonb column."""
    a, u, c = e.attribution, e.usage, e.cost
    ts = e.timestamp
    return (
        e.id,
        ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC),
        e.provider,
        e.requested_model,
        e.served_model,
        e.model_tier,
        str(e.status),
        a.organization,
        a.team,
        a.agent,
        a.workflow,
        a.task_class,
        a.session,
        a.parent_session,
        a.tenant,
        a.user,
        a.environment,
        a.api_key,
        a.outcome,
        u.input_tokens,
        u.cache_read_tokens,
        u.cache_write_5m_tokens,
        u.cache_write_1h_tokens,
        u.output_tokens,
        u.reasoning_tokens,
        u.estimated,
        c.input,
        c.cache_read,
        c.cache_write_5m,
        c.cache_write_1h,
        c.output,
        c.tools,
        c.fallback_price,
        e.latency_ms,
        e.batch,
        e.streamed,
        e.error,
        e.decision,
        tags_json(e.tags),
        *savings_cells(e, _as_is),
        e.policy_version,
    )


def _as_is(value: Decimal) -> Decimal:
    return value


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _money(cells: Sequence[Any]) -> list[Decimal]:
    return [Decimal(v or 0) for v in cells]


class PostgresLedger(SqlLedger):
    dialect = _DIALECT
    case_dialect = _CASES
    page_size = _PAGE

    """One connection guarded by a lock, reopened when the server drops it (so a writer's retry can succeed)."""

    def __init__(self, url: str, *, insert_method: InsertMethod = "copy", connect_timeout: float = 5.0) -> None:
        self.url = url
        self.insert_method = insert_method
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._chain = ChainWriter()
        with self._lock:
            self._run(self._migrate)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=max(1, int(self._connect_timeout)))
            # Compiling a report's query (its estimated cost is high) took 2 s of a 2.7 s read at 10M events, and
            # no ledger query runs long enough to win it back.
            self._conn.execute("SET jit = off")
        return self._conn

    def _run(self, work: Any, *args: Any) -> Any:
        """Call `work(conn, *args)`, mapping driver failures to a one-line `StoreError`."""
        try:
            return work(self._connection(), *args)
        except psycopg.Error as exc:
            raise StoreError(f"ledger {_redact(self.url)}: {_one_line(exc)}") from None

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            conn.execute(_MIGRATION_LOCK)  # a second process waits here, then sees the versions we recorded
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
            current = int(row[0]) if row else 0
            for migration in migrations("postgres"):
                if migration.version <= current:
                    continue
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, name) VALUES (%s, %s)", (migration.version, migration.name)
                )
            if 0 < current < CHAIN_MIGRATION:
                _chain_existing_rows(conn)
            if 0 < current < ROLLUP_MIGRATION:
                for events in _pages_in_order(conn, "TRUE"):
                    conn.execute(UPSERT_ROLLUP, rollup_params(events))

    def schema_version(self) -> int:
        with self._lock:
            row = self._run(lambda c: c.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone())
        return int(row[0])

    def append(self, events: Sequence[CostEvent]) -> int:
        if not events:
            return 0
        unique = unique_by_id(events)
        with self._lock:
            return int(self._run(self._append, unique))

    def _append(self, conn: psycopg.Connection[Any], events: list[CostEvent]) -> int:
        new = events  # optimistic: a batch of new ids is the usual case, and costs no look-up
        for attempt in range(_ATTEMPTS):
            if attempt:
                found = conn.execute(f"SELECT id FROM {TABLE} WHERE id = ANY(%s)", ([e.id for e in events],))
                known = {r[0] for r in found}
                new = [e for e in events if e.id not in known]
                if not new:
                    return 0
            links, head = self._chain.extend(new)
            rows = with_links([postgres_row(e) for e in new], links)
            try:
                with conn.transaction(), conn.cursor() as cur:
                    if self.insert_method == "copy":
                        with cur.copy(COPY_DIRECT) as copy:
                            for row in rows:
                                copy.write_row(row)
                    else:
                        cur.executemany(INSERT_VALUES, rows)
                    cur.execute(UPSERT_HEAD, (head.chain, head.seq, head.hash))
                    cur.execute(UPSERT_ROLLUP, rollup_params(new))
                    cur.execute(UPSERT_SESSIONS, session_params(new))
                    summary = summary_params(new)
                    if summary is not None:
                        cur.execute(UPSERT_SUMMARY, summary)
            except psycopg.errors.UniqueViolation:
                continue
            self._chain.advance(head)
            return len(new)
        raise StoreError(f"ledger {_redact(self.url)}: append kept meeting ids stored meanwhile; retry it")

    def record_policy(self, event: PolicyEvent) -> bool:
        with self._lock:
            return bool(self._run(self._record_policy, event))

    def _record_policy(self, conn: psycopg.Connection[Any], event: PolicyEvent) -> bool:
        links, head = self._chain.extend([event])
        row = (event.id, utc(event.timestamp), str(event.kind), event.version, event.source, event.host)
        try:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(INSERT_POLICY, row + links[0])
                if cur.rowcount == 0:
                    raise _AlreadyKept  # rolls the transaction back
                cur.execute(UPSERT_HEAD, (head.chain, head.seq, head.hash))
        except _AlreadyKept:
            return False
        self._chain.advance(head)
        return True

    def record_outcomes(self, records: Sequence[OutcomeRecorded]) -> int:
        if not records:
            return 0
        rows = [outcome_row(r, utc) for r in records]

        def write(conn: psycopg.Connection[Any]) -> int:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(INSERT_OUTCOME, rows)
                kept = cur.rowcount
                cur.execute(UPSERT_RECORDED, (sorted({r.session for r in records}),))
                return kept

        with self._lock:
            return int(self._run(write))

    def fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._lock:
            return self._run(lambda c: c.execute(sql, params).fetchall())

    @staticmethod
    def decode(row: Sequence[Any]) -> CostEvent:
        return _event(row)

    @staticmethod
    def money(cells: Sequence[Any]) -> list[Decimal]:
        return _money(cells)

    @staticmethod
    def savings(cells: Sequence[Any]) -> list[Decimal]:
        return _money(cells)

    @staticmethod
    def decode_ts(value: Any) -> datetime:
        return value.astimezone(UTC)  # type: ignore[no-any-return]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()


def _pages_in_order(conn: psycopg.Connection[Any], where: str) -> Iterator[list[CostEvent]]:
    """Stored events matching `where`, oldest first, a page at a time (inside the migration transaction)."""
    after: tuple[Any, Any] | None = None
    while True:
        cond = f"({where}) AND (ts, id) > (%s, %s)" if after else where
        page = conn.execute(f"{SELECT_EVENTS} WHERE {cond} ORDER BY ts, id LIMIT {_PAGE}", after or ()).fetchall()
        if page:
            yield [_event(r) for r in page]
        if len(page) < _PAGE:
            return
        after = (page[-1][1], page[-1][0])


def _chain_existing_rows(conn: psycopg.Connection[Any]) -> None:
    """Link the rows stored before the audit chain existed, in (ts, id) order, into the "pre-audit" chain."""
    chain = ChainWriter(LEGACY_CHAIN)
    for events in _pages_in_order(conn, "chain IS NULL"):
        links, head = chain.extend(events)
        with conn.cursor() as cur:
            cur.executemany(SET_LINK, [(*link, e.id) for link, e in zip(links, events, strict=True)])
        chain.advance(head)
    if chain.head.seq:
        conn.execute(UPSERT_HEAD, (chain.name, chain.head.seq, chain.head.hash))


class _AlreadyKept(Exception):
    """A policy event whose id is stored already: its transaction is rolled back, nothing moves."""


def _event(row: Sequence[Any]) -> CostEvent:
    return event_from_row(row, ts=lambda v: v.astimezone(UTC), money=lambda v: v)


def _redact(url: str) -> str:
    """The URL without its password, fit for an error line."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts._replace(query=""))
