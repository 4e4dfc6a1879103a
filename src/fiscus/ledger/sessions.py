"""Session rollups: per hour, each session's calls, tokens, cost and first call, kept up to date inside every
append. A case (cost per outcome, the weekly review, the alerts' session cost) and a run (`fiscus forecast`)
is a session, so those reports read this table instead of grouping the events by session.

One row per (hour, session, attribution, outcome): a session's attribution rarely varies, so there are about as
many rows as sessions an hour, a small fraction of the events. Calls outside any session are summed under
session '' (a report takes each as a case at their mean, as it does from the events). Only the hourly grain:
sessions are short, so a daily one would hold as many rows. Unset dimensions are '' as in `spend_rollup`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from fiscus.events.cost_event import CostEvent
from fiscus.ledger.base import MONEY_CONTEXT, SessionSpend, SpendQuery, cost_total, session_order
from fiscus.ledger.limbs import limb_columns, upsert_sets
from fiscus.ledger.rollup import HOUR, HOUR_US
from fiscus.ledger.rows import TABLE, to_micros

SESSION_TABLE = "session_rollup"
SESSION_KEYS: tuple[str, ...] = (
    "organization",
    "team",
    "agent",
    "workflow",
    "task_class",
    "tenant",
    "user",
    "environment",
    "api_key",
    "outcome",
)
SESSION_GRAINS: tuple[str, ...] = (HOUR,)
SESSION_COUNTS: tuple[str, ...] = ("requests", "tokens")
SESSION_COLUMNS: tuple[str, ...] = ("bucket", "session", *SESSION_KEYS, *SESSION_COUNTS, "first_ts", "cost_usd")
# Tokens as `Usage.total_tokens`: every input token (uncached, cache reads and writes) plus the output.
TOKENS_SQL = "input_tokens + cache_read_tokens + cache_write_5m_tokens + cache_write_1h_tokens + output_tokens"

SessionKey = tuple[int, str, tuple[str, ...]]  # (hour start in µs, session or '', SESSION_KEYS values)


def covers_sessions(query: SpendQuery) -> bool:
    """Whether the session rollup can answer `query` (grouped and filtered by its attribution keys only)."""
    return all(k in SESSION_KEYS for k in query.by) and all(k in SESSION_KEYS for k in query.where)


@dataclass(slots=True)
class SessionDelta:
    requests: int
    tokens: int
    first_ts: int
    cost: Decimal


def session_deltas(events: Iterable[CostEvent]) -> list[tuple[SessionKey, SessionDelta]]:
    """The session rollup rows these events add to, with what they add, in key order (rows locked in one
    order by every writer)."""
    found: dict[SessionKey, SessionDelta] = {}
    add = MONEY_CONTEXT.add
    for e in events:
        a = e.attribution
        micros = to_micros(e.timestamp)
        key = (
            micros - micros % HOUR_US,
            a.session or "",
            (
                a.organization or "",
                a.team or "",
                a.agent or "",
                a.workflow or "",
                a.task_class or "",
                a.tenant or "",
                a.user or "",
                a.environment or "",
                a.api_key or "",
                a.outcome or "",
            ),
        )
        d = found.get(key)
        if d is None:
            found[key] = SessionDelta(1, e.usage.total_tokens, micros, cost_total(e))
            continue
        d.requests += 1
        d.tokens += e.usage.total_tokens
        d.first_ts = min(d.first_ts, micros)
        d.cost = add(d.cost, cost_total(e))
    return sorted(found.items(), key=lambda item: item[0])


def session_rows(events: Iterable[CostEvent]) -> list[tuple[Any, ...]]:
    """`session_deltas` as rows in `SESSION_COLUMNS` order."""
    return [(k[0], k[1], *k[2], d.requests, d.tokens, d.first_ts, d.cost) for k, d in session_deltas(events)]


def session_upsert_sql(
    placeholder: str, money_add: str, least: str, *, source: str | None = None, limbs: bool = False
) -> str:
    """Add delta rows to the session rollup (`money_add`/`least`: the backend's exact sum of two amounts and
    smaller of two integers, with {a} and {b} for the stored and the inserted value). `limbs`: the row also
    carries the cost as integer limbs and an exact flag (SQLite, `fiscus.ledger.limbs`)."""
    key = ("bucket", "session", *SESSION_KEYS)
    sets = [f"{c} = {SESSION_TABLE}.{c} + excluded.{c}" for c in SESSION_COUNTS]
    sets.append(f"first_ts = {least.format(a=f'{SESSION_TABLE}.first_ts', b='excluded.first_ts')}")
    sets.append(f"cost_usd = {money_add.format(a=f'{SESSION_TABLE}.cost_usd', b='excluded.cost_usd')}")
    names = list(SESSION_COLUMNS)
    if limbs:
        names += [*limb_columns(("cost_usd",)), "exact"]
        sets += [*upsert_sets(SESSION_TABLE, "cost_usd"), f"exact = min({SESSION_TABLE}.exact, excluded.exact)"]
    rows = source or f"VALUES ({', '.join([placeholder] * len(names))})"
    columns = ", ".join(f'"{c}"' for c in names)
    conflict = ", ".join(f'"{c}"' for c in key)
    return f"INSERT INTO {SESSION_TABLE} ({columns}) {rows} ON CONFLICT ({conflict}) DO UPDATE SET {', '.join(sets)}"


def _label(query: SpendQuery, outcome: str, outcomes: bool) -> tuple[list[str], list[str]]:
    """(select cells, group cells) of the outcome: grouped, or a NULL cell when `outcomes` is off."""
    if "outcome" in query.by:
        return [], []
    return ([outcome], [outcome]) if outcomes else (["NULL"], [])


def events_session_sql(
    query: SpendQuery, where: str, group_exprs: Sequence[str], money_total: str, *, outcomes: bool = True
) -> str:
    """Per (group, session, outcome), from the events: calls, tokens, first call and total cost. Without
    `outcomes` the outcome cell is NULL and not grouped by (half the rows where only the cost matters)."""
    group = [*group_exprs, '"session"']
    cells, grouped = _label(query, '"outcome"', outcomes)
    select = [*group, *cells, "COUNT(*)", f"SUM({TOKENS_SQL})", "MIN(ts)", money_total]
    return f"SELECT {', '.join(select)} FROM {TABLE}{where} GROUP BY {', '.join([*group, *grouped])}"


def rollup_session_sql(
    query: SpendQuery, p: str, since: int | None, until: int | None, money_sum: str, *, outcomes: bool = True
) -> tuple[str, list[Any]]:
    """The same shape as `events_session_sql`, over the session rollup's hours in `[since, until)`."""
    group = [*(f"NULLIF(\"{k}\", '')" for k in query.by), "NULLIF(\"session\", '')"]
    cells, grouped = _label(query, "NULLIF(\"outcome\", '')", outcomes)
    parts: list[str] = []
    params: list[Any] = []
    if since is not None:
        parts.append(f"bucket >= {p}")
        params.append(since)
    if until is not None:
        parts.append(f"bucket < {p}")
        params.append(until)
    for name, value in query.where.items():
        parts.append(f'"{name}" = {p}')
        params.append(value)
    where = f" WHERE {' AND '.join(parts)}" if parts else ""
    select = [*group, *cells, "SUM(requests)", "SUM(tokens)", "MIN(first_ts)", money_sum]
    return f"SELECT {', '.join(select)} FROM {SESSION_TABLE}{where} GROUP BY {', '.join([*group, *grouped])}", params


def merge_sessions(query: SpendQuery, raw: Iterable[Sequence[Any]], cost: Any, first: Any) -> list[SessionSpend]:
    """Fold rows (group…, session, [outcome], calls, tokens, first, cost cells…) into one `SessionSpend` per
    (group, session, outcome); `cost(cells)` is the exact total of the cost cells, `first(value)` a datetime."""
    n = len(query.by)
    outcome_at = query.by.index("outcome") if "outcome" in query.by else n + 1
    width = n + (1 if "outcome" in query.by else 2)
    found: dict[tuple[Any, ...], SessionSpend] = {}
    add = MONEY_CONTEXT.add
    for r in raw:
        key = tuple(None if v is None else str(v) for v in r[:width])
        calls, tokens, at, money = int(r[width]), int(r[width + 1] or 0), first(r[width + 2]), cost(r[width + 3 :])
        have = found.get(key)
        if have is None:
            found[key] = SessionSpend(
                group=dict(zip(query.by, key[:n], strict=True)), session=key[n], outcome=key[outcome_at],
                calls=calls, tokens=tokens, cost=money, first=at,
            )  # fmt: skip
            continue
        have.calls += calls
        have.tokens += tokens
        have.cost = add(have.cost, money)
        have.first = min(have.first, at)
    return sorted(found.values(), key=session_order)


def first_micros(value: datetime | int) -> int:
    return value if isinstance(value, int) else to_micros(value)
