"""Spend rollups: per-hour, per-day and per-month totals of the ledger, kept up to date inside every append.

An append adds its new events' totals to `spend_rollup` in the same transaction that stores them, so a rollup
always equals the rows it covers: a retried (duplicate) event is never added, a late one lands in its own hour.
A spend query whose keys are all rollup keys reads whole months, days and hours from the rollup and only the
part of the window finer than an hour from `cost_events`, so any window costs at most ~23 + 30 + 30 + 23 bucket
reads besides its months; any other query scans `cost_events` as before. Buckets are UTC (no DST), so hours nest
in days and days in months exactly.

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
HOUR, DAY, MONTH = "h", "d", "m"
GRAINS: tuple[str, ...] = (HOUR, DAY, MONTH)  # finest first; each bucket edge is an edge of the finer grains
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def covers(query: SpendQuery) -> bool:
    """Whether the rollup can answer `query` (it groups and filters only by rollup keys, the day and the hour)."""
    return all(k in ROLLUP_KEYS or k in ("day", "hour") for k in query.by) and all(
        k in ROLLUP_KEYS for k in query.where
    )


def grains_for(query: SpendQuery) -> tuple[str, ...]:
    """The grains that can answer `query`: a bucket coarser than its time key cannot say which hour or day."""
    if "hour" in query.by:
        return (HOUR,)
    if "day" in query.by:
        return (HOUR, DAY)
    return GRAINS


@dataclass(slots=True)
class Delta:
    """What one group of new events adds to one rollup row: counts, money (`ROLLUP_MONEY`), then the ungoverned
    cost and each lever's saving (`ROLLUP_SAVINGS`) in one list."""

    counts: list[int]
    money: list[Decimal]


RollupKey = tuple[str, int, tuple[str, ...]]  # (grain, bucket start in µs since the epoch, ROLLUP_KEYS values)


def deltas(events: Iterable[CostEvent]) -> list[tuple[RollupKey, Delta]]:
    """The rollup rows (hour, day and month) these events add to, with what they add, in key order (so
    concurrent writers lock rows in the same order and cannot deadlock). Events are summed per hour first,
    then the hours per day and month: a batch spans few hours, so the later steps are cheap."""
    hours: dict[tuple[int, tuple[str, ...]], Delta] = {}
    add = MONEY_CONTEXT.add
    for e in events:
        a, u, c = e.attribution, e.usage, e.cost
        micros = to_micros(e.timestamp)
        key = (
            micros - micros % HOUR_US,
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
        day = hour - hour % DAY_US
        for key in ((DAY, day, dims), (MONTH, month_floor(day), dims)):
            have = found.get(key)
            if have is None:
                found[key] = Delta(list(d.counts), list(d.money))
            else:
                have.counts = [x + y for x, y in zip(have.counts, d.counts, strict=True)]
                have.money = [add(x, y) for x, y in zip(have.money, d.money, strict=True)]
    return sorted(found.items(), key=lambda item: item[0])


@dataclass(frozen=True, slots=True)
class Span:
    """One piece of a query window: read from the rollup at `grain`, or from the events themselves (grain None).
    Bounds are µs since the epoch; None is open."""

    grain: str | None
    since: int | None
    until: int | None


_NO_SAVINGS: tuple[Decimal, ...] = (Decimal(0),) * len(SAVINGS_COLUMNS)


def month_floor(micros: int) -> int:
    """The start of the UTC month holding `micros` (µs since the epoch)."""
    at = micros_to_datetime(micros)
    return to_micros(at.replace(day=1, hour=0, minute=0, second=0, microsecond=0))


def _floor(micros: int, grain: str) -> int:
    if grain == MONTH:
        return month_floor(micros)
    step = HOUR_US if grain == HOUR else DAY_US
    return micros - micros % step


def _ceil(micros: int, grain: str) -> int:
    down = _floor(micros, grain)
    if down == micros:
        return micros
    if grain == MONTH:
        at = micros_to_datetime(down)
        return to_micros(at.replace(year=at.year + 1, month=1) if at.month == 12 else at.replace(month=at.month + 1))
    return down + (HOUR_US if grain == HOUR else DAY_US)


def split_window(since: datetime | None, until: datetime | None, grains: tuple[str, ...] = GRAINS) -> Iterator[Span]:
    """`[since, until)` as whole buckets of the coarsest grain that fits inside, the finer grains' whole buckets
    around them, and the minutes left at either end from the events (grain None). An open end is all rollup
    at the coarsest grain (every event is rolled up). Spans come in time order and never overlap."""
    lo = None if since is None else to_micros(since)
    hi = None if until is None else to_micros(until)
    top = -1  # the coarsest grain with a whole bucket inside the window
    for i, grain in enumerate(grains):
        start = None if lo is None else _ceil(lo, grain)
        end = None if hi is None else _floor(hi, grain)
        if start is None or end is None or start < end:
            top = i
    if top < 0:
        yield Span(None, lo, hi)  # less than a whole hour: the events only
        return
    # Left of the middle: [lo, ceil(lo, hour)) from the events, then each grain up to the next coarser edge.
    left: list[Span] = []
    if lo is not None:
        edge = lo
        for grain in (None, *grains[:top]):
            nxt = _ceil(lo, grains[0] if grain is None else grains[grains.index(grain) + 1])
            if edge < nxt:
                left.append(Span(grain, edge, nxt))
            edge = max(edge, nxt)
    yield from left
    start = None if lo is None else _ceil(lo, grains[top])
    end = None if hi is None else _floor(hi, grains[top])
    yield Span(grains[top], start, end)
    if hi is not None:
        edge = end  # type: ignore[assignment]
        for grain in (*reversed(grains[:top]), None):
            nxt = hi if grain is None else _floor(hi, grain)
            if edge < nxt:  # type: ignore[operator]
                yield Span(grain, edge, nxt)
            edge = max(edge, nxt)  # type: ignore[type-var]


_EVENT_HOUR_COST = 4  # an hour read from the events costs about as much as this many rollup buckets
_STEP = {HOUR: HOUR_US, DAY: DAY_US, MONTH: 30 * DAY_US}


def _cost(spans: Iterable[Span]) -> float:
    """A rough cost of reading `spans`: one per rollup bucket, `_EVENT_HOUR_COST` per hour of events (an open
    span costs the same in every plan of one window, so it counts nothing)."""
    total = 0.0
    for s in spans:
        if s.since is not None and s.until is not None:
            length = s.until - s.since
            total += length / HOUR_US * _EVENT_HOUR_COST if s.grain is None else max(1.0, length / _STEP[s.grain])
    return total


def plan_window(
    since: datetime | None, until: datetime | None, grains: tuple[str, ...] = GRAINS
) -> list[tuple[Span, int]]:
    """The spans to read for `[since, until)`, each with its sign: `split_window`'s (all +1), or — when it
    reads less — a whole bucket that ends after `until` (+1) less the part of it from `until` on (-1). A window
    ending now ("month to date") is the month's rollup rows less what lies after now, which is nothing yet,
    instead of a rollup row per day and hour so far."""
    best = [(span, 1) for span in split_window(since, until, grains)]
    if until is None:
        return best
    cost = _cost(span for span, _ in best)
    lo, hi = None if since is None else to_micros(since), to_micros(until)
    for grain in grains:
        start, end = _floor(hi, grain), _ceil(hi, grain)
        if start == hi or (lo is not None and start < lo):
            continue
        edge = micros_to_datetime(end)
        plan = [(span, 1) for span in split_window(since, edge, grains)]
        plan += [(span, -1) for span in split_window(until, edge, grains)]
        if _cost(span for span, _ in plan) < cost:
            best, cost = plan, _cost(span for span, _ in plan)
    return best


def micros_to_datetime(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)
