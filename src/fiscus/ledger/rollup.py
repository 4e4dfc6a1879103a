"""Spend rollups: per-hour and per-day totals of the ledger, kept up to date inside every append.

An append adds its new events' totals to `spend_rollup` in the same transaction that stores them, so a rollup
always equals the rows it covers: a retried (duplicate) event is never added, a late one lands in its own hour.
A spend query whose keys are all rollup keys reads whole days and hours from the rollup and only the part of
the window finer than an hour from `cost_events`; any other query scans `cost_events` as before.

High-cardinality dimensions (session, parent_session, user) are left out of the rollup: a rollup keyed by them
would be as large as the ledger. Unset dimensions are stored as '' (attribution is never ''), so the key can be
a primary key; reads turn '' back into NULL.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fiscus.events.cost_event import CostEvent
from fiscus.events.savings import LEVERS
from fiscus.ledger.base import MONEY_CONTEXT, SpendQuery
from fiscus.ledger.rows import SAVINGS_COLUMNS, to_micros

ROLLUP_TABLE = "spend_rollup"
ROLLUP_MIGRATION = 6  # the schema version that brought the rollup table
ROLLUP_KEYS: tuple[str, ...] = (
    "organization",
    "team",
    "agent",
    "workflow",
    "task_class",
    "tenant",
    "environment",
    "api_key",
    "outcome",
    "provider",
    "served_model",
    "requested_model",
    "status",
)
COUNT_COLUMNS: tuple[str, ...] = (
    "requests",
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "estimated_events",
    "fallback_price_events",
)
ROLLUP_MONEY: tuple[str, ...] = ("input_usd", "cache_read_usd", "cache_write_usd", "output_usd", "tools_usd")
# Summed over the events that record savings (others add nothing), as the events' own spend query sums them.
ROLLUP_SAVINGS: tuple[str, ...] = SAVINGS_COLUMNS
HOUR, DAY = "h", "d"
_HOUR_US = 3_600_000_000
_DAY_US = 24 * _HOUR_US
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def covers(query: SpendQuery) -> bool:
    """Whether the rollup can answer `query` (it groups and filters only by rollup keys and the day)."""
    return all(k in ROLLUP_KEYS or k == "day" for k in query.by) and all(k in ROLLUP_KEYS for k in query.where)


@dataclass(slots=True)
class Delta:
    """What one group of new events adds to one rollup row: counts, money (`ROLLUP_MONEY`), then the ungoverned
    cost and each lever's saving (`ROLLUP_SAVINGS`) in one list."""

    counts: list[int]
    money: list[Decimal]


RollupKey = tuple[str, int, tuple[str, ...]]  # (grain, bucket start in µs since the epoch, ROLLUP_KEYS values)


def deltas(events: Iterable[CostEvent]) -> list[tuple[RollupKey, Delta]]:
    """The rollup rows (hour and day) these events add to, with what they add, in key order (so concurrent
    writers lock rows in the same order and cannot deadlock). Events are summed per hour first, then the
    hours per day: a batch spans few hours, so the second step is cheap."""
    hours: dict[tuple[int, tuple[str, ...]], Delta] = {}
    add = MONEY_CONTEXT.add
    for e in events:
        a, u, c = e.attribution, e.usage, e.cost
        micros = to_micros(e.timestamp)
        key = (
            micros - micros % _HOUR_US,
            (
                a.organization or "",
                a.team or "",
                a.agent or "",
                a.workflow or "",
                a.task_class or "",
                a.tenant or "",
                a.environment or "",
                a.api_key or "",
                a.outcome or "",
                e.provider,
                e.served_model,
                e.requested_model,
                str(e.status),
            ),
        )
        d = hours.get(key)
        cw = u.cache_write_5m_tokens + u.cache_write_1h_tokens
        saved = e.saved
        if e.ungoverned_usd is None or saved is None:
            savings = _NO_SAVINGS
        else:
            savings = (e.ungoverned_usd, *(getattr(saved, lever) for lever in LEVERS))
        if d is None:
            hours[key] = Delta(
                [1, u.input_tokens, u.cache_read_tokens, cw, u.output_tokens, u.reasoning_tokens,
                 int(u.estimated), int(c.fallback_price)],
                [c.input, c.cache_read, add(c.cache_write_5m, c.cache_write_1h), c.output, c.tools, *savings],
            )  # fmt: skip
            continue
        n, m = d.counts, d.money
        n[0] += 1
        n[1] += u.input_tokens
        n[2] += u.cache_read_tokens
        n[3] += cw
        n[4] += u.output_tokens
        n[5] += u.reasoning_tokens
        n[6] += u.estimated
        n[7] += c.fallback_price
        m[0] = add(m[0], c.input)
        m[1] = add(m[1], c.cache_read)
        m[2] = add(add(m[2], c.cache_write_5m), c.cache_write_1h)
        m[3] = add(m[3], c.output)
        m[4] = add(m[4], c.tools)
        if savings is not _NO_SAVINGS:
            for i, value in enumerate(savings, 5):
                m[i] = add(m[i], value)
    found: dict[RollupKey, Delta] = {}
    for (hour, dims), d in hours.items():
        found[(HOUR, hour, dims)] = d
        day_key = (DAY, hour - hour % _DAY_US, dims)
        day = found.get(day_key)
        if day is None:
            found[day_key] = Delta(list(d.counts), list(d.money))
        else:
            day.counts = [x + y for x, y in zip(day.counts, d.counts, strict=True)]
            day.money = [add(x, y) for x, y in zip(day.money, d.money, strict=True)]
    return sorted(found.items(), key=lambda item: item[0])


@dataclass(frozen=True, slots=True)
class Span:
    """One piece of a query window: read from the rollup at `grain`, or from the events themselves (grain None).
    Bounds are µs since the epoch; None is open."""

    grain: str | None
    since: int | None
    until: int | None


_NO_SAVINGS: tuple[Decimal, ...] = (Decimal(0),) * len(SAVINGS_COLUMNS)


def _ceil(value: int, step: int) -> int:
    return -(-value // step) * step


def split_window(since: datetime | None, until: datetime | None) -> Iterator[Span]:
    """`[since, until)` as whole days from the daily rollup, whole hours around them from the hourly one, and
    the minutes left at either end from the events. An open end is all rollup (every event is rolled up)."""
    lo = None if since is None else to_micros(since)
    hi = None if until is None else to_micros(until)
    h_lo = None if lo is None else _ceil(lo, _HOUR_US)
    h_hi = None if hi is None else hi - hi % _HOUR_US
    if h_lo is not None and h_hi is not None and h_lo >= h_hi:
        yield Span(None, lo, hi)  # less than a whole hour: the events only
        return
    d_lo = None if h_lo is None else _ceil(h_lo, _DAY_US)
    d_hi = None if h_hi is None else h_hi - h_hi % _DAY_US
    if lo is not None and lo < h_lo:  # type: ignore[operator]
        yield Span(None, lo, h_lo)
    if d_lo is not None and d_hi is not None and d_lo >= d_hi:
        yield Span(HOUR, h_lo, h_hi)  # no whole day inside
    else:
        if h_lo is not None and h_lo < d_lo:  # type: ignore[operator]
            yield Span(HOUR, h_lo, d_lo)
        yield Span(DAY, d_lo, d_hi)
        if h_hi is not None and d_hi < h_hi:  # type: ignore[operator]
            yield Span(HOUR, d_hi, h_hi)
    if hi is not None and h_hi < hi:  # type: ignore[operator]
        yield Span(None, h_hi, hi)


def micros_to_datetime(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)
