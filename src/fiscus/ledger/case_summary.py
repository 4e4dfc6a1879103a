"""Case summaries: one row per session — its calls, tokens, cost, first and last call, attribution, call label
and latest recorded outcome — kept by every append and every outcome record, in the same transaction.

A case (cost per outcome, the weekly review's ranks, the alerts' median session) and a run (`fiscus forecast`)
is a session. A session whose calls all fall inside a report's window and share one attribution and at most
one outcome label is its summary row, as is: the per-case queries (`fiscus.ledger.case_sql`) read one row per
such session instead of grouping its hourly rollup rows. The rest — a session that crosses a bound of the
window, or whose calls differ (`mixed`) — are few and are read from the session rollup as before, so each
answer is the one the events give.

An outcome recorded before any call of its session makes a row with calls = 0, which the calls fill in later.
Unset dimensions are '' as in the rollups.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fiscus.events.cost_event import CostEvent
from fiscus.ledger.base import MONEY_CONTEXT, SpendQuery, cost_total
from fiscus.ledger.limbs import limb_columns, upsert_sets
from fiscus.ledger.rollup import HOUR_US
from fiscus.ledger.rows import to_micros
from fiscus.ledger.sessions import SESSION_KEYS

SUMMARY_TABLE = "case_summary"
# A case is one session: the session rollup's dimensions, less the call's own outcome label (a case's outcome is
# the one recorded for it, kept in `recorded`).
SUMMARY_KEYS: tuple[str, ...] = tuple(k for k in SESSION_KEYS if k != "outcome")
SUMMARY_COLUMNS: tuple[str, ...] = (
    "session", "calls", "tokens", "first_ts", "last_ts", *SUMMARY_KEYS, "label", "mixed", "cost_usd",
)  # fmt: skip
RECORDED_COLUMNS: tuple[str, ...] = ("session", "recorded", "recorded_ts", "recorded_id")


def covers_summary(query: SpendQuery) -> bool:
    """Whether summary rows can stand for sessions in `query`: grouped and filtered by a session's attribution
    only (a call's outcome label splits a session, so a query on it reads the rollup)."""
    return all(k in SUMMARY_KEYS for k in query.by) and all(k in SUMMARY_KEYS for k in query.where)


@dataclass(slots=True)
class SummaryDelta:
    calls: int
    tokens: int
    first_ts: int
    last_ts: int
    keys: tuple[str, ...]
    label: str
    mixed: int
    cost: Decimal


def summary_deltas(events: Iterable[CostEvent]) -> list[tuple[str, SummaryDelta]]:
    """What these events add to each session's summary row, in session order (rows locked in one order by every
    writer). Calls outside any session have none."""
    found: dict[str, SummaryDelta] = {}
    add = MONEY_CONTEXT.add
    for e in events:
        a = e.attribution
        if a.session is None:
            continue
        micros = to_micros(e.timestamp)
        keys = (
            a.organization or "",
            a.team or "",
            a.agent or "",
            a.workflow or "",
            a.task_class or "",
            a.tenant or "",
            a.user or "",
            a.environment or "",
            a.api_key or "",
        )
        label = a.outcome or ""
        d = found.get(a.session)
        if d is None:
            found[a.session] = SummaryDelta(1, e.usage.total_tokens, micros, micros, keys, label, 0, cost_total(e))
            continue
        d.calls += 1
        d.tokens += e.usage.total_tokens
        d.first_ts = min(d.first_ts, micros)
        d.last_ts = max(d.last_ts, micros)
        d.cost = add(d.cost, cost_total(e))
        if keys != d.keys or (label and d.label and label != d.label):
            d.mixed = 1
        d.label = d.label or label
    return sorted(found.items())


def summary_rows(events: Iterable[CostEvent]) -> list[tuple[Any, ...]]:
    """`summary_deltas` as rows in `SUMMARY_COLUMNS` order."""
    return [
        (s, d.calls, d.tokens, d.first_ts, d.last_ts, *d.keys, d.label, d.mixed, d.cost)
        for s, d in summary_deltas(events)
    ]


def summary_upsert_sql(
    placeholder: str,
    money_add: str,
    least: str,
    greatest: str,
    *,
    source: str | None = None,
    limbs: bool = False,
) -> str:
    """Add delta rows to the summary (`money_add`/`least`/`greatest` spell the backend's exact sum of two amounts
    and smaller and greater of two integers, with {a} and {b} for the stored and the inserted value). A row with
    no calls yet (an outcome recorded first) takes the delta's attribution; otherwise a delta that differs in
    attribution or label marks the session mixed. `limbs`: the row carries its cost as limbs too (SQLite)."""
    t = SUMMARY_TABLE
    empty = f"{t}.calls = 0"
    differs = [f'{t}."{k}" <> excluded."{k}"' for k in SUMMARY_KEYS]
    differs.append(f"({t}.label <> '' AND excluded.label <> '' AND {t}.label <> excluded.label)")
    sets = [f"{c} = {t}.{c} + excluded.{c}" for c in ("calls", "tokens")]
    for c, pick in (("first_ts", least), ("last_ts", greatest)):
        either = pick.format(a=f"{t}.{c}", b=f"excluded.{c}")
        sets.append(f"{c} = CASE WHEN {empty} THEN excluded.{c} ELSE {either} END")
    sets += [f'"{k}" = CASE WHEN {empty} THEN excluded."{k}" ELSE {t}."{k}" END' for k in SUMMARY_KEYS]
    sets.append(f"label = CASE WHEN {t}.label = '' THEN excluded.label ELSE {t}.label END")
    sets.append(
        f"mixed = CASE WHEN {empty} THEN excluded.mixed WHEN {t}.mixed = 1 OR excluded.mixed = 1 OR "
        f"{' OR '.join(differs)} THEN 1 ELSE 0 END"
    )
    sets.append(f"cost_usd = {money_add.format(a=f'{t}.cost_usd', b='excluded.cost_usd')}")
    names = list(SUMMARY_COLUMNS)
    if limbs:
        names += [*limb_columns(("cost_usd",)), "exact"]
        sets += [*upsert_sets(t, "cost_usd"), f"exact = min({t}.exact, excluded.exact)"]
    rows = source or f"VALUES ({', '.join([placeholder] * len(names))})"
    columns = ", ".join(f'"{c}"' for c in names)
    return f"INSERT INTO {t} ({columns}) {rows} ON CONFLICT (session) DO UPDATE SET {', '.join(sets)}"


def recorded_upsert_sql(sessions: str, micros: str, collate: str, zero_cost: str) -> str:
    """Set the summary's recorded outcome of the sessions `sessions` (a condition on `session`) picks to their
    latest stored record (ties on time: the greater id), unless a later one is set already (a concurrent
    writer). `micros` turns the stored `ts` into µs; a session with no call yet gets a row with calls = 0."""
    t = SUMMARY_TABLE
    blanks = ", ".join(["''"] * (len(SUMMARY_KEYS) + 1))
    latest = (
        f"SELECT session, outcome, {micros} AS ts, id, ROW_NUMBER() OVER (PARTITION BY session ORDER BY ts DESC, "
        f"id{collate} DESC) AS rn FROM session_outcomes WHERE {sessions}"
    )
    newer = (
        f"excluded.recorded_ts > {t}.recorded_ts OR (excluded.recorded_ts = {t}.recorded_ts AND "
        f"excluded.recorded_id{collate} > {t}.recorded_id{collate})"
    )
    sets = ", ".join(f"{c} = CASE WHEN {newer} THEN excluded.{c} ELSE {t}.{c} END" for c in RECORDED_COLUMNS[1:])
    columns = ", ".join(f'"{c}"' for c in (*SUMMARY_COLUMNS, *RECORDED_COLUMNS[1:]))
    return (
        f"INSERT INTO {t} ({columns}) SELECT session, 0, 0, 0, 0, {blanks}, 0, {zero_cost}, outcome, ts, id "
        f"FROM ({latest}) o WHERE rn = 1 ON CONFLICT (session) DO UPDATE SET {sets}"
    )


@dataclass(frozen=True, slots=True)
class Plan:
    """How a per-case query splits its window: `inside` (a WHERE over summary rows: the sessions it reads from
    the summary) and `odd` (a SELECT of (os, lo, hi) — session, its first and last hour — per other session with
    calls near or in the window, which it reads from the session rollup), each with its parameters."""

    inside: str
    inside_params: list[Any]
    odd: str
    odd_params: list[Any]
    odd_rows: Sequence[Sequence[Any]] | None = None  # the odd (os, lo, hi) read ahead, when there are few


def plan(query: SpendQuery, p: str, span: int, ts: Callable[[Any], int] = to_micros) -> Plan | None:
    """The split of `query`'s window, or None when the summary cannot answer it (read everything from the
    rollup). `span` is the longest session's length in µs: a session that crosses a bound starts at most that
    long before it."""
    if not covers_summary(query):
        return None
    since = None if query.since is None else ts(query.since)
    until = None if query.until is None else ts(query.until)
    inside, iparams = ["calls > 0", "mixed = 0"], []
    if since is not None:
        inside.append(f"first_ts >= {p}")
        iparams.append(since)
    if until is not None:
        inside.append(f"last_ts < {p}")
        iparams.append(until)
    for name, value in query.where.items():
        inside.append(f'"{name}" = {p}')
        iparams.append(value)
    t = SUMMARY_TABLE
    mixed, mparams = ["mixed = 1", "calls > 0"], []
    if until is not None:
        mixed.append(f"first_ts < {p}")
        mparams.append(until)
    if since is not None:
        mixed.append(f"last_ts >= {p}")
        mparams.append(since)
    hour = f"first_ts / {HOUR_US} * {HOUR_US}"  # not %: psycopg's placeholder mark
    cells = f"SELECT session AS os, {hour} AS lo, last_ts AS hi FROM {t}"
    selects, oparams = [f"{cells} WHERE {' AND '.join(mixed)}"], list(mparams)
    for bound in (since, until):
        if bound is not None:  # starts before the bound, ends at or after it
            selects.append(f"{cells} WHERE first_ts >= {p} AND first_ts < {p} AND last_ts >= {p}")
            oparams += [bound - span, bound, bound]
    return Plan(" AND ".join(inside), iparams, " UNION ".join(selects), oparams)


ODD_LIMIT = 64  # odd sessions named one by one in a query; more are joined in the database
SPAN_SQL = f"SELECT COALESCE(MAX(last_ts - first_ts), 0) FROM {SUMMARY_TABLE}"  # the longest session, by its index
