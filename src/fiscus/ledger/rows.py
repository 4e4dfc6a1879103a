"""The ledger's column layout and the two-way mapping between a `CostEvent` and a row, per backend.

Rows are built as plain tuples in `EVENT_COLUMNS` order: the insert path runs these functions once per event, so they
are written flat (no per-column dispatch), which is most of what makes bulk appends fast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from fiscus.attribution import DIMENSIONS, Attribution
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.events.savings import LEVERS, Savings
from fiscus.pricing.cost import Cost
from fiscus.usage.model import Usage

TOKEN_COLUMNS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
)
MONEY_COLUMNS = ("input_usd", "cache_read_usd", "cache_write_5m_usd", "cache_write_1h_usd", "output_usd", "tools_usd")
# What the call would have cost ungoverned and the saving per lever (NULL when unknown: refused work, old rows).
SAVINGS_COLUMNS = ("ungoverned_usd", *(f"saved_{lever}_usd" for lever in LEVERS))
EVENT_COLUMNS: tuple[str, ...] = (
    "id",
    "ts",
    "provider",
    "requested_model",
    "served_model",
    "model_tier",
    "status",
    *DIMENSIONS,
    *TOKEN_COLUMNS,
    "usage_estimated",
    *MONEY_COLUMNS,
    "fallback_price",
    "latency_ms",
    "batch",
    "streamed",
    "error",
    "decision",
    "tags",
    *SAVINGS_COLUMNS,
    "policy_version",
)
# The audit chain's link of each row (fiscus.ledger.chain): which writer's chain, where in it, and the hashes.
CHAIN_COLUMNS: tuple[str, ...] = ("chain", "seq", "prev_hash", "hash")
COLUMNS: tuple[str, ...] = (*EVENT_COLUMNS, *CHAIN_COLUMNS)
TABLE = "cost_events"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def utc(ts: datetime) -> datetime:
    """Naive timestamps are taken to be UTC already; aware ones are converted."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def to_micros(ts: datetime) -> int:
    """Microseconds since the epoch, exactly (no float on the way)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return (ts - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def tags_json(tags: dict[str, str]) -> str | None:
    return orjson.dumps(tags).decode() if tags else None


def sqlite_row(e: CostEvent) -> tuple[Any, ...]:
    """SQLite: timestamp as integer microseconds (UTC), money as exact decimal text, flags as 0/1."""
    a, u, c = e.attribution, e.usage, e.cost
    return (
        e.id,
        to_micros(e.timestamp),
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
        int(u.estimated),
        str(c.input),
        str(c.cache_read),
        str(c.cache_write_5m),
        str(c.cache_write_1h),
        str(c.output),
        str(c.tools),
        int(c.fallback_price),
        e.latency_ms,
        int(e.batch),
        int(e.streamed),
        e.error,
        e.decision,
        tags_json(e.tags),
        *savings_cells(e, str),
        e.policy_version,
    )


def savings_cells(e: CostEvent, money: Callable[[Decimal], Any]) -> tuple[Any, ...]:
    """The ungoverned cost and per-lever savings of `e` as `money` encodes them, or NULLs when unknown."""
    if e.ungoverned_usd is None or e.saved is None:
        return _NO_SAVINGS
    s = e.saved
    return (
        money(e.ungoverned_usd),
        money(s.cache),
        money(s.route),
        money(s.context),
        money(s.summary),
        money(s.response_cache),
        money(s.batch),
    )


_NO_SAVINGS = (None,) * len(SAVINGS_COLUMNS)
_N_DIMS = len(DIMENSIONS)
_T0 = 7 + _N_DIMS  # index of the first token column


def event_from_row(row: Sequence[Any], *, ts: Callable[[Any], datetime], money: Callable[[Any], Decimal]) -> CostEvent:
    """Rebuild a `CostEvent` from a row in `EVENT_COLUMNS` order; `ts` and `money` undo the backend's encodings."""
    dims = row[7:_T0]
    m = _T0 + 7  # first money column
    tags = row[m + 12]
    if isinstance(tags, str):
        tags = orjson.loads(tags)
    ungoverned, saved = row[m + 13], None
    if ungoverned is not None:
        ungoverned = money(ungoverned)
        saved = Savings(*(money(v) for v in row[m + 14 : m + 14 + len(LEVERS)]))
    return CostEvent(
        id=row[0],
        timestamp=ts(row[1]),
        provider=row[2],
        requested_model=row[3],
        served_model=row[4],
        model_tier=row[5],
        status=CallStatus(row[6]),
        attribution=Attribution(**dict(zip(DIMENSIONS, dims, strict=True))),
        usage=Usage(*row[_T0 : _T0 + 6], estimated=bool(row[_T0 + 6])),
        cost=Cost(*(money(v) for v in row[m : m + 5]), fallback_price=bool(row[m + 6]), tools=money(row[m + 5])),
        latency_ms=row[m + 7],
        batch=bool(row[m + 8]),
        streamed=bool(row[m + 9]),
        error=row[m + 10],
        decision=row[m + 11],
        tags=dict(tags or {}),
        ungoverned_usd=ungoverned,
        saved=saved,
        policy_version=row[m + 14 + len(LEVERS)],
    )
