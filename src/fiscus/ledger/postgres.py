"""`PostgresLedger`: the ledger in PostgreSQL (psycopg 3), shared by every host of a deployment.

Appends COPY a batch straight into the table; if any id is already stored (a retried write), that transaction
fails on the primary key and the batch goes through COPY into a session-local staging table and one
`INSERT … SELECT … ON CONFLICT (id) DO NOTHING` instead, so nothing counts twice. bench/ledger_ingest.py
measures both against a pipelined `executemany`. Money is NUMERIC, so sums are exact Decimals.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC
from decimal import Decimal
from typing import Any, Literal

import psycopg

from fiscus.errors import StoreError
from fiscus.events.cost_event import CostEvent
from fiscus.events.outcome_event import OutcomeRecorded
from fiscus.ledger.migrations import migrations
from fiscus.ledger.outcomes import insert_sql, outcome_row
from fiscus.ledger.rows import COLUMNS, SAVINGS_COLUMNS, TABLE, event_from_row, savings_cells, tags_json, utc
from fiscus.ledger.sql import Dialect, SqlLedger, q

_COLS = ", ".join(q(c) for c in COLUMNS)
_STAGE = "fiscus_cost_events_stage"
CREATE_STAGE = f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (LIKE {TABLE}) ON COMMIT DELETE ROWS"
COPY_STAGE = f"COPY {_STAGE} ({_COLS}) FROM STDIN"
COPY_DIRECT = f"COPY {TABLE} ({_COLS}) FROM STDIN"
INSERT_FROM_STAGE = f"INSERT INTO {TABLE} ({_COLS}) SELECT {_COLS} FROM {_STAGE} ON CONFLICT (id) DO NOTHING"
INSERT_VALUES = (
    f"INSERT INTO {TABLE} ({_COLS}) VALUES ({', '.join(['%s'] * (len(COLUMNS) - 1))}, %s::jsonb) "
    "ON CONFLICT (id) DO NOTHING"
)
INSERT_OUTCOME = insert_sql("%s", conflict="on conflict")
_PAGE = 2000
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
)

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
    page_size = _PAGE

    """One connection guarded by a lock, reopened when the server drops it (so a writer's retry can succeed)."""

    def __init__(self, url: str, *, insert_method: InsertMethod = "copy", connect_timeout: float = 5.0) -> None:
        self.url = url
        self.insert_method = insert_method
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._migrated = False
        with self._lock:
            self._run(self._migrate)
            self._migrated = True

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=max(1, int(self._connect_timeout)))
            if self._migrated:  # a reconnect: the session-local staging table went with the old session
                self._conn.execute(CREATE_STAGE)
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
        conn.execute(CREATE_STAGE)

    def schema_version(self) -> int:
        with self._lock:
            row = self._run(lambda c: c.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone())
        return int(row[0])

    def append(self, events: Sequence[CostEvent]) -> int:
        if not events:
            return 0
        rows = [postgres_row(e) for e in events]
        if len({row[0] for row in rows}) != len(rows):  # one row per id (the first), so COPY meets only old ids
            rows = list({row[0]: row for row in reversed(rows)}.values())[::-1]
        with self._lock:
            return int(self._run(self._copy if self.insert_method == "copy" else self._executemany, rows))

    @staticmethod
    def _copy(conn: psycopg.Connection[Any], rows: list[tuple[Any, ...]]) -> int:
        # Optimistic: a batch of new ids (the usual case) is copied straight into the table, as fast as COPY
        # gets. Only when an id is already there (a retried write) is the batch staged and upserted instead.
        # The connection is in autocommit, so this one COPY is its own transaction: all or nothing, and two
        # round trips fewer than an explicit BEGIN … COMMIT around it.
        try:
            with conn.cursor() as cur, cur.copy(COPY_DIRECT) as copy:
                for row in rows:
                    copy.write_row(row)
            return len(rows)
        except psycopg.errors.UniqueViolation:
            pass
        with conn.transaction(), conn.cursor() as cur:
            with cur.copy(COPY_STAGE) as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(INSERT_FROM_STAGE)
            return cur.rowcount

    @staticmethod
    def _executemany(conn: psycopg.Connection[Any], rows: list[tuple[Any, ...]]) -> int:
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(INSERT_VALUES, rows)
            return cur.rowcount

    def record_outcomes(self, records: Sequence[OutcomeRecorded]) -> int:
        if not records:
            return 0
        rows = [outcome_row(r, utc) for r in records]

        def write(conn: psycopg.Connection[Any]) -> int:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(INSERT_OUTCOME, rows)
                return cur.rowcount

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

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()


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
