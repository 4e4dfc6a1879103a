"""`SqliteLedger`: the ledger in one SQLite file (WAL), for one host; safe across threads and processes.

Money is stored as exact decimal *text* and summed with `Decimal` by an aggregate registered on the connection.
Integer sub-units were considered and rejected: per-token prices go below a nano-dollar (e.g. $0.01875 per
million tokens), so nano-dollars are not exact, and SQLite's 64-bit SUM overflows pico-dollars at $9.2M per
group. Reports are a read path, so exactness wins over the cost of summing in Python.
"""

from __future__ import annotations

import operator
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from fiscus.errors import StoreError
from fiscus.events.cost_event import CostEvent
from fiscus.events.outcome_event import OutcomeRecorded
from fiscus.events.policy_event import PolicyEvent
from fiscus.ledger.base import MONEY_CONTEXT, SpendQuery
from fiscus.ledger.case_select import Picker
from fiscus.ledger.case_sql import CaseDialect
from fiscus.ledger.case_summary import recorded_upsert_sql, summary_rows, summary_upsert_sql
from fiscus.ledger.chain import CHAIN_MIGRATION, LEGACY_CHAIN, ChainWriter, with_links
from fiscus.ledger.limbs import LO, add_text, from_limbs, limb_sums, limbs, row_limbs
from fiscus.ledger.migrations import migrations
from fiscus.ledger.outcomes import chunks, insert_sql, outcome_row
from fiscus.ledger.rollup import COUNT_COLUMNS, ROLLUP_MIGRATION, ROLLUP_MONEY, deltas
from fiscus.ledger.rows import COLUMNS, SAVINGS_COLUMNS, TABLE, event_from_row, from_micros, sqlite_row, to_micros
from fiscus.ledger.sessions import session_rows, session_upsert_sql
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
from fiscus.sqlite_wal import connect_wal

INSERT = f"INSERT INTO {TABLE} ({', '.join(q(c) for c in COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
INSERT_OUTCOME = insert_sql("?", conflict="or ignore")
INSERT_POLICY = (
    f"INSERT INTO {POLICY_TABLE} ({', '.join(POLICY_COLUMNS)}, chain, seq, prev_hash, hash) VALUES "
    f"({', '.join('?' * (len(POLICY_COLUMNS) + 4))})"
)
UPSERT_HEAD = (
    "INSERT INTO ledger_chains (chain, seq, hash) VALUES (?, ?, ?) "
    "ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, hash = excluded.hash"
)
SET_LINK = f"UPDATE {TABLE} SET chain = ?, seq = ?, prev_hash = ?, hash = ? WHERE id = ?"
_PAGE = 2000
_IDS_PER_QUERY = 500
_BUSY_TIMEOUT_MS = 10_000


class _MoneySum:
    """SQLite aggregate `fiscus_money_sum(input, cache_read, cw5m, cw1h, output, tools)` → "in cr cw out tools"
    exactly."""

    def __init__(self) -> None:
        self.parts = [Decimal(0)] * 5

    def step(self, m_in: str, m_cr: str, m_cw5: str, m_cw1: str, m_out: str, m_tools: str) -> None:
        add = MONEY_CONTEXT.add
        p = self.parts
        p[0] = add(p[0], Decimal(m_in))
        p[1] = add(p[1], Decimal(m_cr))
        p[2] = add(add(p[2], Decimal(m_cw5)), Decimal(m_cw1))
        p[3] = add(p[3], Decimal(m_out))
        p[4] = add(p[4], Decimal(m_tools))

    def finalize(self) -> str:
        return " ".join(str(v) for v in self.parts)


def _money_add(a: str, b: str) -> str:
    """SQLite function `fiscus_money_add(a, b)`: the exact sum of two decimal strings (rollup upserts)."""
    return str(MONEY_CONTEXT.add(Decimal(a), Decimal(b)))


_DIALECT = Dialect(
    placeholder="?",
    day="strftime('%Y-%m-%d', ts / 1000000, 'unixepoch')",
    hour="strftime('%Y-%m-%dT%H', ts / 1000000, 'unixepoch')",
    money_sums=(
        "fiscus_money_sum(input_usd, cache_read_usd, cache_write_5m_usd, cache_write_1h_usd, output_usd, tools_usd)"
    ),
    flag_sums="SUM(usage_estimated), SUM(fallback_price)",
    ts_param=to_micros,
    savings_sums=f"fiscus_savings_sum({', '.join(SAVINGS_COLUMNS)})",
    savings_cells=1,
    # Rollups sum integer limbs natively over their exact rows, decimal text only over the others.
    rollup_money_sums=", ".join(
        [
            *limb_sums(ROLLUP_MONEY),
            "fiscus_money_sum(input_usd, cache_read_usd, cache_write_usd, '0', output_usd, "
            "tools_usd) FILTER (WHERE exact = 0)",
        ]
    ),
    rollup_savings_sums=", ".join(
        [*limb_sums(SAVINGS_COLUMNS), f"fiscus_savings_sum({', '.join(SAVINGS_COLUMNS)}) FILTER (WHERE exact = 0)"]
    ),
    money_add=lambda c: f"fiscus_money_add(spend_rollup.{c}, excluded.{c})",
    session_money_sum=", ".join([*limb_sums(("cost_usd",)), "fiscus_decimal_sum(cost_usd) FILTER (WHERE exact = 0)"]),
)
_EVENT_COST = "input_usd, cache_read_usd, cache_write_5m_usd, cache_write_1h_usd, output_usd, tools_usd"
_CASES = CaseDialect(
    cells=("hi", "lo"),
    rollup="cost_usd_hi AS hi, cost_usd_lo AS lo, exact AS x",
    event=(
        f"COALESCE(fiscus_cost_limb({_EVENT_COST}, 0), 0) AS hi, COALESCE(fiscus_cost_limb({_EVENT_COST}, 1), 0) "
        f"AS lo, fiscus_cost_limb({_EVENT_COST}, 0) IS NOT NULL AS x"
    ),
    sums=f"SUM(hi) + SUM(lo) / {LO} AS hi, SUM(lo) % {LO} AS lo, MIN(x) AS x",
    micros="ts",
    collate="",
    decode=lambda cells: from_limbs(cells[0], cells[1]),  # type: ignore[arg-type]
    pick=Picker(
        2,
        lambda cells: int(cells[0]) * LO + int(cells[1]),
        operator.add,
        lambda atto: from_limbs(0, atto),
        lambda atto: atto // LO,
    ),
    grouping_sets=False,
)
UPSERT_ROLLUP = rollup_upsert_sql(_DIALECT, limbs=True)
UPSERT_SESSIONS = session_upsert_sql("?", "fiscus_money_add({a}, {b})", "min({a}, {b})", limbs=True)
UPSERT_SUMMARY = summary_upsert_sql("?", "fiscus_money_add({a}, {b})", "min({a}, {b})", "max({a}, {b})", limbs=True)
_MONEY_CELLS = len(ROLLUP_MONEY)
_SAVINGS_CELLS = len(SAVINGS_COLUMNS)


def rollup_params(events: Sequence[CostEvent]) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for key, d in deltas(events):
        parts, exact = row_limbs(d.money)
        out.append((*key[:2], *key[2], *d.counts, *[str(m) if m else "0" for m in d.money], *parts, exact))
    return out


def session_params(events: Sequence[CostEvent]) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for row in session_rows(events):
        parts, exact = row_limbs(row[-1:])
        out.append((*row[:-1], str(row[-1]), *parts, exact))
    return out


def summary_params(events: Sequence[CostEvent]) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for row in summary_rows(events):
        parts, exact = row_limbs(row[-1:])
        out.append((*row[:-1], str(row[-1]), *parts, exact))
    return out


def _recorded_sql(count: int) -> str:
    return recorded_upsert_sql(f"session IN ({', '.join('?' * count)})", "ts", "", "'0'")


def _limb(amount: str, part: int) -> int | None:
    """SQLite function `fiscus_limb(amount, 0 | 1)`: an amount's hi or lo limb, NULL when it has none
    (migrations fill the limbs of stored rollup rows with it)."""
    found = limbs(Decimal(amount))
    return None if found is None else found[part]


def _cost_limb(m_in: str, m_cr: str, m_cw5: str, m_cw1: str, m_out: str, m_tools: str, part: int) -> int | None:
    """SQLite function `fiscus_cost_limb(input, cache_read, cw5m, cw1h, output, tools, 0 | 1)`: a stored event's
    total cost as a limb, NULL when it has none (the edges of a per-case query)."""
    add = MONEY_CONTEXT.add
    total = add(add(add(Decimal(m_in), Decimal(m_cr)), add(Decimal(m_cw5), Decimal(m_cw1))), add(Decimal(m_out),
                Decimal(m_tools)))  # fmt: skip
    found = limbs(total)
    return None if found is None else found[part]


def _summed(hi: object, lo: object, text: object) -> Decimal:
    return add_text(from_limbs(hi, lo), text)  # type: ignore[arg-type]


def _rollup_cells(cells: Sequence[object], count: int) -> str:
    """`count` amounts as summed limbs (hi, lo each) then one text cell of the inexact rows' sums → one text."""
    extra = cells[2 * count]
    more = [Decimal(v) for v in str(extra).split()] if extra is not None else [Decimal(0)] * count
    amounts = (_summed(cells[2 * i], cells[2 * i + 1], None) for i in range(count))
    return " ".join(str(MONEY_CONTEXT.add(a, b)) for a, b in zip(amounts, more, strict=True))


class _DecimalSum:
    """SQLite aggregate `fiscus_decimal_sum(amount)`: the exact sum of decimal texts (rollup reads)."""

    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, amount: str) -> None:
        self.total = MONEY_CONTEXT.add(self.total, Decimal(amount))

    def finalize(self) -> str:
        return str(self.total)


class _CostSum(_MoneySum):
    """SQLite aggregate `fiscus_cost_sum(input, cache_read, cw5m, cw1h, output, tools)`: the exact total cost."""

    def finalize(self) -> str:
        total = Decimal(0)
        for part in self.parts:
            total = MONEY_CONTEXT.add(total, part)
        return str(total)


class _SavingsSum:
    """SQLite aggregate `fiscus_savings_sum(ungoverned, saved per lever…)` → the sums as one text, NULL rows
    (refused work, rows from before the savings were recorded) skipped."""

    def __init__(self) -> None:
        self.parts = [Decimal(0)] * len(SAVINGS_COLUMNS)

    def step(self, *cells: str | None) -> None:
        if cells[0] is None:
            return
        add = MONEY_CONTEXT.add
        self.parts = [add(total, Decimal(cell or 0)) for total, cell in zip(self.parts, cells, strict=True)]

    def finalize(self) -> str:
        return " ".join(str(v) for v in self.parts)


def _money(cells: Sequence[object]) -> list[Decimal]:
    return [Decimal(v) for v in str(cells[0]).split()]


class SqliteLedger(SqlLedger):
    dialect = _DIALECT
    case_dialect = _CASES
    page_size = _PAGE

    """One connection guarded by a lock (SQLite serialises writers anyway); other processes meet through
    WAL and a busy timeout. Every append is one `BEGIN IMMEDIATE` transaction."""

    def __init__(self, path: str | Path, *, url: str | None = None) -> None:
        self.path = str(path)
        self.url = url or f"sqlite:///{self.path}"
        self._lock = threading.Lock()
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = connect_wal(self.path, busy_timeout_ms=_BUSY_TIMEOUT_MS)
            self._conn.create_aggregate("fiscus_money_sum", 6, _MoneySum)  # type: ignore[arg-type]
            self._conn.create_aggregate(
                "fiscus_savings_sum",
                len(SAVINGS_COLUMNS),
                _SavingsSum,  # type: ignore[arg-type]
            )
            self._conn.create_function("fiscus_money_add", 2, _money_add, deterministic=True)
            self._conn.create_aggregate("fiscus_decimal_sum", 1, _DecimalSum)  # type: ignore[arg-type]
            self._conn.create_aggregate("fiscus_cost_sum", 6, _CostSum)  # type: ignore[arg-type]
            self._conn.create_function("fiscus_limb", 2, _limb, deterministic=True)
            self._conn.create_function("fiscus_cost_limb", 7, _cost_limb, deterministic=True)
            self._chain = ChainWriter()
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open ledger {self.url}: {exc}") from None

    def _migrate(self) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")  # the write lock: a second process waits here, then sees our versions
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
            )
            current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
            for migration in migrations("sqlite"):
                if migration.version <= current:
                    continue
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, name) VALUES (?, ?)", (migration.version, migration.name)
                )
            if 0 < current < CHAIN_MIGRATION:
                self._chain_existing_rows()
            if 0 < current < ROLLUP_MIGRATION:
                self._roll_up_existing_rows()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _pages_in_order(self, where: str) -> Iterator[list[CostEvent]]:
        """Stored events matching `where`, oldest first, a page at a time (inside the migration transaction)."""
        after: tuple[object, object] | None = None
        while True:
            cond = f"({where}) AND (ts, id) > (?, ?)" if after else where
            sql = f"{SELECT_EVENTS} WHERE {cond} ORDER BY ts, id LIMIT {_PAGE}"
            page = self._conn.execute(sql, after or ()).fetchall()
            if page:
                yield [_event(r) for r in page]
            if len(page) < _PAGE:
                return
            after = (page[-1][1], page[-1][0])

    def _chain_existing_rows(self) -> None:
        """Link the rows stored before the audit chain existed, in (ts, id) order, into the "pre-audit" chain."""
        chain = ChainWriter(LEGACY_CHAIN)
        for events in self._pages_in_order("chain IS NULL"):
            links, head = chain.extend(events)
            self._conn.executemany(SET_LINK, [(*link, e.id) for link, e in zip(links, events, strict=True)])
            chain.advance(head)
        if chain.head.seq:
            self._conn.execute(UPSERT_HEAD, (chain.name, chain.head.seq, chain.head.hash))

    def _roll_up_existing_rows(self) -> None:
        for events in self._pages_in_order("1 = 1"):
            self._conn.executemany(UPSERT_ROLLUP, rollup_params(events))

    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])

    def append(self, events: Sequence[CostEvent]) -> int:
        if not events:
            return 0
        unique = unique_by_id(events)
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")  # the write lock: the ids found below stay the stored ones
                try:
                    known = self._known_ids([e.id for e in unique])
                    new = [e for e in unique if e.id not in known] if known else unique
                    head = self._chain.head
                    if new:
                        links, head = self._chain.extend(new)
                        conn.executemany(INSERT, with_links([sqlite_row(e) for e in new], links))
                        conn.execute(UPSERT_HEAD, (head.chain, head.seq, head.hash))
                        conn.executemany(UPSERT_ROLLUP, rollup_params(new))
                        conn.executemany(UPSERT_SESSIONS, session_params(new))
                        conn.executemany(UPSERT_SUMMARY, summary_params(new))
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                self._chain.advance(head)
                return len(new)
            except sqlite3.Error as exc:
                raise StoreError(f"ledger {self.url}: append failed: {exc}") from None

    def record_outcomes(self, records: Sequence[OutcomeRecorded]) -> int:
        if not records:
            return 0
        rows = [outcome_row(r, to_micros) for r in records]
        with self._lock:
            conn = self._conn
            try:
                before = conn.total_changes
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(INSERT_OUTCOME, rows)
                    kept = conn.total_changes - before
                    for chunk in chunks(r.session for r in records):
                        conn.execute(_recorded_sql(len(chunk)), chunk)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                return kept
            except sqlite3.Error as exc:
                raise StoreError(f"ledger {self.url}: recording outcomes failed: {exc}") from None

    def _known_ids(self, ids: list[str]) -> set[str]:
        known: set[str] = set()
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start : start + _IDS_PER_QUERY]
            sql = f"SELECT id FROM {TABLE} WHERE id IN ({', '.join('?' * len(chunk))})"
            known.update(r[0] for r in self._conn.execute(sql, chunk))
        return known

    def record_policy(self, event: PolicyEvent) -> bool:
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if conn.execute(f"SELECT 1 FROM {POLICY_TABLE} WHERE id = ?", (event.id,)).fetchone():
                        conn.execute("ROLLBACK")
                        return False
                    links, head = self._chain.extend([event])
                    row = (event.id, to_micros(event.timestamp), str(event.kind), event.version, event.source)
                    conn.execute(INSERT_POLICY, (*row, event.host, *links[0]))
                    conn.execute(UPSERT_HEAD, (head.chain, head.seq, head.hash))
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                self._chain.advance(head)
                return True
            except sqlite3.Error as exc:
                raise StoreError(f"ledger {self.url}: recording the policy failed: {exc}") from None

    def fetch(self, sql: str, params: Sequence[object]) -> list[tuple[object, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"ledger {self.url}: query failed: {exc}") from None

    @staticmethod
    def decode(row: Sequence[object]) -> CostEvent:
        return _event(row)

    @staticmethod
    def money(cells: Sequence[object]) -> list[Decimal]:
        return _money(cells)

    @staticmethod
    def savings(cells: Sequence[object]) -> list[Decimal]:
        return _money(cells)

    def rollup_row(self, query: SpendQuery, row: Sequence[object]) -> Sequence[object]:
        n = len(query.by) + 2 + len(COUNT_COLUMNS)
        money_end = n + 2 * _MONEY_CELLS + 1
        return (*row[:n], _rollup_cells(row[n:money_end], _MONEY_CELLS), _rollup_cells(row[money_end:], _SAVINGS_CELLS))

    def session_cost(self, cells: Sequence[object]) -> Decimal:
        return _summed(cells[0], cells[1], cells[2])

    @staticmethod
    def decode_ts(value: object) -> datetime:
        return from_micros(int(value))  # type: ignore[call-overload]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _event(row: Sequence[object]) -> CostEvent:
    return event_from_row(row, ts=from_micros, money=Decimal)  # type: ignore[arg-type]
