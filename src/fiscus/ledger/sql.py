"""SQL shared by the backends: the WHERE clause of a time window and filters, and the spend aggregate.

Each backend supplies its own spellings (placeholder, the day of a timestamp, how money and flags are summed);
the shape of the query and the merging of its rows into `SpendRow`s are the same for all.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from fiscus.events.cost_event import CostEvent
from fiscus.events.savings import Savings
from fiscus.ledger.base import FILTER_KEYS, Ledger, SpendQuery, SpendRow, resolve_key, sort_rows
from fiscus.ledger.outcomes import chunks, latest_by_session, select_sql
from fiscus.ledger.rows import COLUMNS, TABLE


def q(name: str) -> str:
    """A quoted identifier (`user` is reserved in PostgreSQL)."""
    return f'"{name}"'


SELECT_EVENTS = f"SELECT {', '.join(q(c) for c in COLUMNS)} FROM {TABLE}"


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


def spend_sql(dialect: Dialect, query: SpendQuery) -> tuple[str, list[Any]]:
    """One aggregate over (group keys, status, outcome); `merge_spend` folds status and outcome back in."""
    keys = [dialect.day if k == "day" else dialect.hour if k == "hour" else q(k) for k in query.by]
    group = [*keys, "status", "outcome"]
    where, params = where_clause(dialect, query.since, query.until, query.where)
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


class SqlLedger(Ledger):
    """The reads both SQL ledgers share: events by keyset paging, spend by one aggregate query. A backend gives
    its `dialect`, `fetch` (run a query under its own lock and error handling), and how its rows decode."""

    dialect: Dialect
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

    def spend(self, query: SpendQuery) -> list[SpendRow]:
        sql, params = spend_sql(self.dialect, query)
        rows = self.fetch(sql, params)
        return merge_spend(query, rows, self.money, self.savings, self.dialect.savings_cells)

    def outcomes(self, sessions: Iterable[str]) -> dict[str, str]:
        rows: list[Sequence[Any]] = []
        for chunk in chunks(sessions):
            rows.extend(self.fetch(select_sql(self.dialect.placeholder, len(chunk)), chunk))
        return latest_by_session(rows)
