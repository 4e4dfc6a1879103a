"""SQL shared by the backends: the WHERE clause of a time window and filters, and the spend aggregate.

Each backend supplies its own spellings (placeholder, the day of a timestamp, how money and flags are summed);
the shape of the query and the merging of its rows into `SpendRow`s are the same for all.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from fiscus.events.cost_event import CostEvent
from fiscus.events.policy_event import PolicyEvent, PolicyEventKind
from fiscus.events.savings import Savings
from fiscus.ledger.base import (
    FILTER_KEYS,
    MONEY_CONTEXT,
    Ledger,
    SessionSpend,
    SpendQuery,
    SpendRow,
    resolve_key,
    sort_rows,
    subtract,
)
from fiscus.ledger.case_sql import CaseDialect, CaseQueries
from fiscus.ledger.chain import CHAINS_TABLE, ChainedRow, ChainHead
from fiscus.ledger.limbs import limb_columns, upsert_sets
from fiscus.ledger.outcomes import chunks, latest_by_session, select_sql
from fiscus.ledger.rollup import (
    COUNT_COLUMNS,
    DAY_US,
    ROLLUP_KEYS,
    ROLLUP_MONEY,
    ROLLUP_SAVINGS,
    ROLLUP_TABLE,
    Span,
    covers,
    grains_for,
    micros_to_datetime,
    plan_window,
    split_window,
)
from fiscus.ledger.rows import CHAIN_COLUMNS, EVENT_COLUMNS, TABLE
from fiscus.ledger.sessions import (
    SESSION_GRAINS,
    covers_sessions,
    events_session_sql,
    first_micros,
    merge_sessions,
    rollup_session_sql,
)


def q(name: str) -> str:
    """A quoted identifier (`user` is reserved in PostgreSQL)."""
    return f'"{name}"'


SELECT_EVENTS = f"SELECT {', '.join(q(c) for c in EVENT_COLUMNS)} FROM {TABLE}"
POLICY_TABLE = "policy_events"
POLICY_COLUMNS: tuple[str, ...] = ("id", "ts", "kind", "version", "source", "host")
_CHAINED = {
    TABLE: f"SELECT {', '.join(q(c) for c in (*CHAIN_COLUMNS, *EVENT_COLUMNS))} FROM {TABLE}",
    POLICY_TABLE: f"SELECT {', '.join((*CHAIN_COLUMNS, *POLICY_COLUMNS))} FROM {POLICY_TABLE}",
}


@dataclass(frozen=True, slots=True)
class Dialect:
    placeholder: str  # "?" or "%s"
    day: str  # expression giving the UTC day of column ts as YYYY-MM-DD
    hour: str  # expression giving the UTC hour of column ts as YYYY-MM-DDTHH
    money_sums: str  # select-list text summing input, cache read, cache write (5m+1h), output and tool money
    flag_sums: str  # select-list text counting usage_estimated and fallback_price events
    ts_param: Callable[[datetime], Any]  # a datetime bound as this backend stores ts
    savings_sums: str  # select-list text summing the ungoverned cost and each lever's saving (NULLs skipped)
    savings_cells: int  # how many cells `savings_sums` gives
    rollup_money_sums: str  # select-list text summing the rollup's money columns, shaped as `money_sums`
    rollup_savings_sums: str  # select-list text summing the rollup's savings columns, shaped as `savings_sums`
    money_add: Callable[[str], str]  # SET expression adding the inserted amount to money column `name`
    session_money_sum: str = "SUM(cost_usd)"  # select-list text: the exact sum of the session rollup's cost
    # predicate: the event's tag {tag} has {value}, both inlined (checked names) so a partial index on that
    # predicate serves it: a tag's events are few, and no rollup keeps tags
    # (as a rowid subquery: beside GROUP BY, SQLite's planner would otherwise walk a dimension's index)
    tag_equals: str = "rowid IN (SELECT rowid FROM cost_events WHERE json_extract(tags, '$.{tag}') = '{value}')"


def unique_by_id(events: Sequence[CostEvent]) -> list[CostEvent]:
    """The first event of each id, in order (a batch may repeat an event)."""
    seen: set[str] = set()
    out = []
    for e in events:
        if e.id not in seen:
            seen.add(e.id)
            out.append(e)
    return out


def where_clause(
    dialect: Dialect,
    since: datetime | None,
    until: datetime | None,
    where: Mapping[str, str] | None,
    *,
    after: tuple[Any, str] | None = None,
) -> tuple[str, list[Any]]:
    """`WHERE …` (or "") and its parameters; `after` is a keyset cursor (ts, id) for paging."""
    parts: list[str] = []
    params: list[Any] = []
    p = dialect.placeholder
    if since is not None:
        parts.append(f"ts >= {p}")
        params.append(dialect.ts_param(since))
    if until is not None:
        parts.append(f"ts < {p}")
        params.append(dialect.ts_param(until))
    for name, value in (where or {}).items():
        parts.append(f"{q(resolve_key(name, allowed=FILTER_KEYS))} = {p}")
        params.append(value)
    if after is not None:
        parts.append(f"(ts, id) > ({p}, {p})")
        params.extend(after)
    return (" WHERE " + " AND ".join(parts) if parts else ""), params


_TAG_TEXT = re.compile(r"[a-z_]{1,40}")


def spend_sql(
    dialect: Dialect,
    query: SpendQuery,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    tag: tuple[str, str] | None = None,
) -> tuple[str, list[Any]]:
    """One aggregate over (group keys, status, outcome) of the events in `[since, until)` (default: the
    query's window); `merge_spend` folds status and outcome back in."""
    keys = [dialect.day if k == "day" else dialect.hour if k == "hour" else q(k) for k in query.by]
    group = [*keys, "status", "outcome"]
    if since is None and until is None:
        since, until = query.since, query.until
    where, params = where_clause(dialect, since, until, query.where)
    if tag is not None:
        name, value = tag
        if not (_TAG_TEXT.fullmatch(name) and _TAG_TEXT.fullmatch(value)):
            raise ValueError(f"tag {name!r}={value!r}: names and values of [a-z_] only")
        where += (" AND " if where else " WHERE ") + dialect.tag_equals.format(tag=name, value=value)
    select = ", ".join(
        [
            *group,
            "COUNT(*)",
            "SUM(input_tokens)",
            "SUM(cache_read_tokens)",
            "SUM(cache_write_5m_tokens + cache_write_1h_tokens)",
            "SUM(output_tokens)",
            "SUM(reasoning_tokens)",
            dialect.flag_sums,
            dialect.money_sums,
            dialect.savings_sums,
        ]
    )
    return f"SELECT {select} FROM {TABLE}{where} GROUP BY {', '.join(group)}", params


def rollup_spend_sql(dialect: Dialect, query: SpendQuery, span: Span) -> tuple[str, list[Any]]:
    """The same aggregate as `spend_sql`, over the rollup rows of one grain in the span."""
    p = dialect.placeholder
    # Grouped by the bucket's day or hour as an integer (µs), named in Python once per group (`bucket_names`):
    # an expression on every row made each grouped row cost a date format.
    spelled = {"day": f"bucket / {DAY_US} * {DAY_US}", "hour": "bucket"}
    keys = [spelled.get(k, f"NULLIF({q(k)}, '')") for k in query.by]
    group = [*keys, "status", "NULLIF(outcome, '')"]
    parts, params = [f"grain = {p}"], [span.grain]
    if span.since is not None:
        parts.append(f"bucket >= {p}")
        params.append(span.since)
    if span.until is not None:
        parts.append(f"bucket < {p}")
        params.append(span.until)
    for name, value in query.where.items():
        parts.append(f"{q(name)} = {p}")
        params.append(value)
    select = ", ".join(
        [*group, *(f"SUM({c})" for c in COUNT_COLUMNS), dialect.rollup_money_sums, dialect.rollup_savings_sums]
    )
    where = " AND ".join(parts)
    return f"SELECT {select} FROM {ROLLUP_TABLE} WHERE {where} GROUP BY {', '.join(group)}", params


_TIME_FORMATS = {"day": "%Y-%m-%d", "hour": "%Y-%m-%dT%H"}  # as the dialects' `day` and `hour` spell them


def bucket_names(query: SpendQuery) -> Callable[[Sequence[Any]], Sequence[Any]]:
    """What turns a `rollup_spend_sql` row's day and hour cells (bucket µs) into the text the events give."""
    at = [(i, _TIME_FORMATS[k]) for i, k in enumerate(query.by) if k in _TIME_FORMATS]
    if not at:
        return lambda row: row

    def name(row: Sequence[Any]) -> Sequence[Any]:
        cells = list(row)
        for i, fmt in at:
            cells[i] = micros_to_datetime(int(cells[i])).strftime(fmt)
        return cells

    return name


def rollup_upsert_sql(dialect: Dialect, *, source: str | None = None, limbs: bool = False) -> str:
    """Add delta rows to the rollup: insert each, or add its counts and money to the row already there. The
    rows are one row of placeholders, or `source` (a SELECT giving every column in order). `limbs`: each row
    also carries its money as integer limbs and an exact flag (SQLite, `fiscus.ledger.limbs`)."""
    key = ("grain", "bucket", *ROLLUP_KEYS)
    money = (*ROLLUP_MONEY, *ROLLUP_SAVINGS)
    columns: tuple[str, ...] = (*key, *COUNT_COLUMNS, *money)
    sets = [f"{c} = {ROLLUP_TABLE}.{c} + excluded.{c}" for c in COUNT_COLUMNS]
    sets += [f"{c} = {dialect.money_add(c)}" for c in money]
    if limbs:
        columns = (*columns, *limb_columns(money), "exact")
        sets += [clause for c in money for clause in upsert_sets(ROLLUP_TABLE, c)]
        sets.append(f"exact = min({ROLLUP_TABLE}.exact, excluded.exact)")
    rows = source or f"VALUES ({', '.join([dialect.placeholder] * len(columns))})"
    return (
        f"INSERT INTO {ROLLUP_TABLE} ({', '.join(q(c) for c in columns)}) {rows} "
        f"ON CONFLICT ({', '.join(q(c) for c in key)}) DO UPDATE SET {', '.join(sets)}"
    )


def merge_spend(
    query: SpendQuery,
    raw: Iterable[Sequence[Any]],
    money: Callable[[Sequence[Any]], Sequence[Decimal]],
    savings: Callable[[Sequence[Any]], Sequence[Decimal]],
    savings_cells: int,
) -> list[SpendRow]:
    """Fold aggregate rows (group…, status, outcome, counts…, money…, savings…) into one `SpendRow` per group.
    `money` turns the money cells of a raw row into (input, cache_read, cache_write, output, tools), `savings` the last
    `savings_cells` into (ungoverned, saving per lever…)."""
    n = len(query.by)
    rows: dict[tuple[Any, ...], SpendRow] = {}
    for r in raw:
        key = tuple(None if v is None else str(v) for v in r[:n])
        status, outcome = r[n], r[n + 1]
        count, tin, tcr, tcw, tout, treason, est, fb = (int(v or 0) for v in r[n + 2 : n + 10])
        m_in, m_cr, m_cw, m_out, m_tools = money(r[n + 10 : len(r) - savings_cells])
        ungoverned, *saved = savings(r[len(r) - savings_cells :])
        row = rows.get(key)
        if row is None:
            row = rows[key] = SpendRow(group=dict(zip(query.by, key, strict=True)))
        row.requests += count
        row.input_tokens += tin
        row.cache_read_tokens += tcr
        row.cache_write_tokens += tcw
        row.output_tokens += tout
        row.reasoning_tokens += treason
        row.estimated_events += est
        row.fallback_price_events += fb
        row.add_money(m_in, m_cr, m_cw, m_out, m_tools)
        row.add_savings(ungoverned, Savings(*saved))
        row.statuses[status] = row.statuses.get(status, 0) + count
        if outcome is not None:
            row.outcomes[outcome] = row.outcomes.get(outcome, 0) + count
    return sort_rows(list(rows.values()), query.by)


class SqlLedger(CaseQueries, Ledger):
    """The reads both SQL ledgers share: events by keyset paging, spend by one aggregate query. A backend gives
    its `dialect`, `fetch` (run a query under its own lock and error handling), and how its rows decode."""

    dialect: Dialect
    case_dialect: CaseDialect
    page_size = 2000

    @abc.abstractmethod
    def fetch(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        """All rows of one query, taken under the backend's lock; errors become `StoreError`."""

    @staticmethod
    @abc.abstractmethod
    def decode(row: Sequence[Any]) -> CostEvent:
        """One stored row as a `CostEvent`."""

    @staticmethod
    @abc.abstractmethod
    def money(cells: Sequence[Any]) -> Sequence[Decimal]:
        """The money cells of a spend row as exact Decimals."""

    @staticmethod
    @abc.abstractmethod
    def savings(cells: Sequence[Any]) -> Sequence[Decimal]:
        """The savings cells of a spend row as exact Decimals: ungoverned cost, then each lever's saving."""

    @staticmethod
    @abc.abstractmethod
    def decode_ts(value: Any) -> datetime:
        """A stored timestamp as an aware UTC datetime."""

    def rollup_row(self, query: SpendQuery, row: Sequence[Any]) -> Sequence[Any]:
        """A spend rollup row in the shape of an events aggregate row (a backend may store money otherwise)."""
        return row

    def session_cost(self, cells: Sequence[Any]) -> Decimal:
        """The exact cost of the session rollup's summed cost cells."""
        return Decimal(cells[0])

    def decode_policy(self, row: Sequence[Any]) -> PolicyEvent:
        return PolicyEvent(
            id=row[0], timestamp=self.decode_ts(row[1]), kind=PolicyEventKind(row[2]), version=row[3],
            source=row[4], host=row[5],
        )  # fmt: skip

    def policy_events(self, *, since: datetime | None = None, until: datetime | None = None) -> list[PolicyEvent]:
        clause, params = where_clause(self.dialect, since, until, None)
        sql = f"SELECT {', '.join(POLICY_COLUMNS)} FROM {POLICY_TABLE}{clause} ORDER BY ts, id"
        return [self.decode_policy(row) for row in self.fetch(sql, params)]

    def chain_heads(self) -> list[ChainHead]:
        rows = self.fetch(f"SELECT chain, seq, hash FROM {CHAINS_TABLE} ORDER BY chain", [])
        return [ChainHead(str(r[0]), int(r[1]), str(r[2])) for r in rows]

    def chained_rows(self, table: str) -> Iterator[ChainedRow]:
        """Every row of `table` (cost_events or policy_events) in (chain, seq) order, page by page; then the
        rows that carry no chain link at all (chain NULL) — rows put there behind the ledger's back."""
        decode = self.decode if table == TABLE else self.decode_policy
        p = self.dialect.placeholder
        after: tuple[str, int] | None = None
        size = self.page_size
        while True:
            cond = f"chain IS NOT NULL AND (chain, seq) > ({p}, {p})" if after else "chain IS NOT NULL"
            page = self.fetch(f"{_CHAINED[table]} WHERE {cond} ORDER BY chain, seq LIMIT {size}", after or [])
            for r in page:
                yield ChainedRow(r[0], None if r[1] is None else int(r[1]), r[2], r[3], decode(r[4:]))
            if len(page) < size:
                break
            after = (page[-1][0], page[-1][1])
        for r in self.fetch(f"{_CHAINED[table]} WHERE chain IS NULL ORDER BY id", []):
            yield ChainedRow(None, None if r[1] is None else int(r[1]), r[2], r[3], decode(r[4:]))

    def get(self, event_id: str) -> CostEvent | None:
        rows = self.fetch(f"{SELECT_EVENTS} WHERE id = {self.dialect.placeholder}", [event_id])
        return self.decode(rows[0]) if rows else None

    def events(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        where: Mapping[str, str] | None = None,
    ) -> Iterator[CostEvent]:
        after: tuple[Any, str] | None = None
        size = self.page_size
        while True:  # keyset paging: no lock or cursor is held while the caller works on a page
            clause, params = where_clause(self.dialect, since, until, where, after=after)
            page = self.fetch(f"{SELECT_EVENTS}{clause} ORDER BY ts, id LIMIT {size}", params)
            for row in page:
                yield self.decode(row)
            if len(page) < size:
                return
            after = (page[-1][1], page[-1][0])

    def outcomes(self, sessions: Iterable[str]) -> dict[str, str]:
        rows: list[Sequence[Any]] = []
        for chunk in chunks(sessions):
            rows.extend(self.fetch(select_sql(self.dialect.placeholder, len(chunk)), chunk))
        return latest_by_session(rows)

    def spend(self, query: SpendQuery, *, scan: bool = False) -> list[SpendRow]:
        if scan or not covers(query):
            sql, params = spend_sql(self.dialect, query)
            return merge_spend(query, self.fetch(sql, params), self.money, self.savings, self.dialect.savings_cells)
        raw: list[Sequence[Any]] = []
        less: list[Sequence[Any]] = []  # the spans a plan subtracts (`plan_window`)
        name = bucket_names(query)
        for span, sign in plan_window(query.since, query.until, grains_for(query)):
            into = raw if sign > 0 else less
            if span.grain is None:
                since = None if span.since is None else micros_to_datetime(span.since)
                until = None if span.until is None else micros_to_datetime(span.until)
                sql, params = spend_sql(self.dialect, query, since, until)
                into.extend(self.fetch(sql, params))
            else:
                sql, params = rollup_spend_sql(self.dialect, query, span)
                into.extend(self.rollup_row(query, name(r)) for r in self.fetch(sql, params))
        cells = self.dialect.savings_cells
        rows = merge_spend(query, raw, self.money, self.savings, cells)
        if less:
            rows = subtract(rows, merge_spend(query, less, self.money, self.savings, cells), query.by)
        return rows

    def tagged_spend(self, query: SpendQuery, tag: str, value: str) -> list[SpendRow]:
        sql, params = spend_sql(self.dialect, query, tag=(tag, value))
        return merge_spend(query, self.fetch(sql, params), self.money, self.savings, self.dialect.savings_cells)

    def _group_exprs(self, by: Sequence[str]) -> list[str]:
        d = self.dialect
        return [d.day if k == "day" else d.hour if k == "hour" else q(k) for k in by]

    def _events_sessions(
        self, query: SpendQuery, since: datetime | None, until: datetime | None, outcomes: bool = True
    ) -> list[tuple[Any, ...]]:
        """Session rows of the events in `[since, until)`, their first call in µs and cost one Decimal."""
        where, params = where_clause(self.dialect, since, until, query.where)
        sql = events_session_sql(query, where, self._group_exprs(query.by), self.dialect.money_sums, outcomes=outcomes)
        width = len(query.by) + (1 if "outcome" in query.by else 2)
        out = []
        add = MONEY_CONTEXT.add
        for r in self.fetch(sql, params):
            m_in, m_cr, m_cw, m_out, m_tools = self.money(r[width + 3 :])
            total = add(add(add(m_in, m_cr), add(m_cw, m_out)), m_tools)
            out.append((*r[: width + 2], first_micros(r[width + 2]), total))
        return out

    def session_spend(self, query: SpendQuery, *, scan: bool = False, outcomes: bool = True) -> list[SessionSpend]:
        if scan or not covers_sessions(query):
            rows = self._events_sessions(query, query.since, query.until, outcomes)
            return merge_sessions(query, rows, _one_amount, micros_to_datetime)
        raw: list[Sequence[Any]] = []
        p = self.dialect.placeholder
        for span in split_window(query.since, query.until, SESSION_GRAINS):
            if span.grain is None:
                since = None if span.since is None else micros_to_datetime(span.since)
                until = None if span.until is None else micros_to_datetime(span.until)
                raw.extend(self._events_sessions(query, since, until, outcomes))
                continue
            money = self.dialect.session_money_sum
            sql, params = rollup_session_sql(query, p, span.since, span.until, money, outcomes=outcomes)
            width = len(query.by) + (1 if "outcome" in query.by else 2)
            for r in self.fetch(sql, params):
                raw.append((*r[: width + 2], int(r[width + 2]), self.session_cost(r[width + 3 :])))
        return merge_sessions(query, raw, _one_amount, micros_to_datetime)

    def single_calls(
        self, *, since: datetime | None = None, until: datetime | None = None, where: Mapping[str, str] | None = None
    ) -> Iterator[CostEvent]:
        after: tuple[Any, str] | None = None
        size = self.page_size
        while True:  # keyset paging over the partial index of calls outside any session
            clause, params = where_clause(self.dialect, since, until, where, after=after)
            clause = f"{clause} AND session IS NULL" if clause else " WHERE session IS NULL"
            page = self.fetch(f"{SELECT_EVENTS}{clause} ORDER BY ts, id LIMIT {size}", params)
            for row in page:
                yield self.decode(row)
            if len(page) < size:
                return
            after = (page[-1][1], page[-1][0])


def _one_amount(cells: Sequence[Any]) -> Decimal:
    return cells[0]  # type: ignore[no-any-return]
