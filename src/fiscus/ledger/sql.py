"""SQL shared by the backends: the WHERE clause of a time window and filters, and the spend aggregate.

Each backend supplies its own spellings (placeholder, the day of a timestamp, how money and flags are summed);
the shape of the query and the merging of its rows into `SpendRow`s are the same for all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from fiscus.ledger.base import FILTER_KEYS, SpendQuery, SpendRow, resolve_key, sort_rows
from fiscus.ledger.rows import COLUMNS, TABLE


def q(name: str) -> str:
    """A quoted identifier (`user` is reserved in PostgreSQL)."""
    return f'"{name}"'


SELECT_EVENTS = f"SELECT {', '.join(q(c) for c in COLUMNS)} FROM {TABLE}"


@dataclass(frozen=True, slots=True)
class Dialect:
    placeholder: str  # "?" or "%s"
    day: str  # expression giving the UTC day of column ts as YYYY-MM-DD
    money_sums: str  # select-list text summing input, cache read, cache write (5m+1h) and output money
    flag_sums: str  # select-list text counting usage_estimated and fallback_price events
    ts_param: Callable[[datetime], Any]  # a datetime bound as this backend stores ts


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
    keys = [dialect.day if k == "day" else q(k) for k in query.by]
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
        ]
    )
    return f"SELECT {select} FROM {TABLE}{where} GROUP BY {', '.join(group)}", params


def merge_spend(
    query: SpendQuery, raw: Iterable[Sequence[Any]], money: Callable[[Sequence[Any]], Sequence[Decimal]]
) -> list[SpendRow]:
    """Fold aggregate rows (group…, status, outcome, counts…, money…) into one `SpendRow` per group.
    `money` turns the trailing money cells of a raw row into (input, cache_read, cache_write, output)."""
    n = len(query.by)
    rows: dict[tuple[Any, ...], SpendRow] = {}
    for r in raw:
        key = tuple(None if v is None else str(v) for v in r[:n])
        status, outcome = r[n], r[n + 1]
        count, tin, tcr, tcw, tout, treason, est, fb = (int(v or 0) for v in r[n + 2 : n + 10])
        m_in, m_cr, m_cw, m_out = money(r[n + 10 :])
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
        row.add_money(m_in, m_cr, m_cw, m_out)
        row.statuses[status] = row.statuses.get(status, 0) + count
        if outcome is not None:
            row.outcomes[outcome] = row.outcomes.get(outcome, 0) + count
    return sort_rows(list(rows.values()), query.by)
