"""What-if replay: a ledger window re-priced under another policy or pricing — other routes, another model per task
class, caching on or off, context windows, batch for deferrable classes, today's prices instead of the call's —
from the recorded usage (input split, cache reads and writes, output), actual beside what-if per group.

Every call is re-priced with the catalogue from what it recorded; the assumptions a change needs are listed with
the result (output length unchanged on another model, where a trimmed context's tokens come from, how caching
would have split a session's input). Pure: the caller reads the ledger and prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from fiscus.events.cost_event import CostEvent
from fiscus.policy.types import Policy
from fiscus.pricing import PriceCatalogue
from fiscus.reports.spend import dec
from fiscus.shaping.cache_minimums import min_cacheable_tokens
from fiscus.usage.model import Usage, UsageDetail

CacheMode = Literal["recorded", "on", "off"]
_CACHE_TTL_S = 300  # caching on: a session's next call within the 5-minute lifetime reads what the last one wrote


@dataclass(frozen=True, slots=True)
class WhatIf:
    """The changes to replay. `models`: task class → model (or provider/model); `policy`: its routes move calls
    within their model's ladder; `context`: task class → most input tokens; `batch`: task classes sent as batch."""

    models: Mapping[str, str] = field(default_factory=dict)
    policy: Policy | None = None
    cache: CacheMode = "recorded"
    context: Mapping[str, int] = field(default_factory=dict)
    batch: frozenset[str] = frozenset()
    prices_at: datetime | None = None  # None: each call at the prices of its own time


@dataclass(slots=True)
class ReplayRow:
    group: dict[str, str | None]
    calls: int = 0
    actual: Decimal = Decimal(0)
    what_if: Decimal = Decimal(0)
    moved: int = 0  # calls on another model

    @property
    def saving(self) -> Decimal:
        return self.actual - self.what_if

    @property
    def saving_share(self) -> Decimal | None:
        return None if not self.actual else self.saving / self.actual

    def to_dict(self) -> dict[str, Any]:
        share = self.saving_share
        return {
            **self.group,
            "calls": self.calls,
            "calls_on_another_model": self.moved,
            "actual_usd": dec(self.actual),
            "what_if_usd": dec(self.what_if),
            "saving_usd": dec(self.saving),
            "saving_share": None if share is None else dec(share.quantize(Decimal("0.0001"))),
        }


@dataclass(frozen=True, slots=True)
class Replay:
    by: tuple[str, ...]
    rows: list[ReplayRow]
    total: ReplayRow
    assumptions: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": list(self.by),
            "rows": [r.to_dict() for r in self.rows],
            "total": self.total.to_dict(),
            "assumptions": self.assumptions,
        }


def replay(
    events: Iterable[CostEvent], what_if: WhatIf, catalogue: PriceCatalogue, *, by: tuple[str, ...] = ("task_class",)
) -> Replay:
    ordered = sorted(events, key=lambda e: e.timestamp)
    neighbours = _session_neighbours(ordered) if what_if.cache == "on" else {}
    rows: dict[tuple[str | None, ...], ReplayRow] = {}
    total = ReplayRow({})
    moves: dict[tuple[str, str], int] = {}
    trimmed = 0
    for event in ordered:
        provider, model = _target(event, what_if)
        usage, cut = _usage(event, model, what_if, neighbours.get(event.id))
        trimmed += cut
        task_class = event.attribution.task_class
        batch = event.batch or (task_class is not None and task_class in what_if.batch)
        at = what_if.prices_at or event.timestamp
        cost = catalogue.price(usage, provider=provider, model=model, at=at, batch=batch).total
        key = tuple(event.attribution.get(d) for d in by)
        row = rows.get(key)
        if row is None:
            row = rows[key] = ReplayRow(dict(zip(by, key, strict=True)))
        moved = model != event.served_model
        if moved:
            moves[(event.served_model, model)] = moves.get((event.served_model, model), 0) + 1
        for target in (row, total):
            target.calls += 1
            target.actual += event.cost.total
            target.what_if += cost
            target.moved += moved
    ordered_rows = sorted(rows.values(), key=lambda r: r.saving, reverse=True)
    return Replay(by, ordered_rows, total, _assumptions(what_if, moves, trimmed, ordered))


def _target(event: CostEvent, what_if: WhatIf) -> tuple[str, str]:
    task_class = event.attribution.task_class
    if task_class is not None and task_class in what_if.models:
        provider, sep, model = what_if.models[task_class].rpartition("/")
        return (provider if sep else event.provider), model
    policy = what_if.policy
    if policy is not None and task_class is not None and policy.routes.get(task_class):
        routed = policy.ladders.routed(event.served_model, policy.routes[task_class])
        if routed:
            return event.provider, routed
    return event.provider, event.served_model


def _usage(event: CostEvent, model: str, what_if: WhatIf, neighbours: tuple[int, bool] | None) -> tuple[Usage, int]:
    """The recorded usage as it would have been: context trimmed, cache split changed. Returns the tokens cut."""
    u = event.usage
    fresh, read, w5, w1 = u.input_tokens, u.cache_read_tokens, u.cache_write_5m_tokens, u.cache_write_1h_tokens
    cut = 0
    task_class = event.attribution.task_class
    window = what_if.context.get(task_class) if task_class is not None else None
    if window is not None and fresh + read + w5 + w1 > window:
        cut = fresh + read + w5 + w1 - window
        # The middle of the conversation goes first: uncached input, then what was being written, then reads
        # (the stable prefix a cache holds is what a window keeps).
        left = cut
        take = min(fresh, left)
        fresh, left = fresh - take, left - take
        take = min(w5, left)
        w5, left = w5 - take, left - take
        take = min(w1, left)
        w1, left = w1 - take, left - take
        read -= left
    total = fresh + read + w5 + w1
    if what_if.cache == "off":
        fresh, read, w5, w1 = total, 0, 0, 0
    elif what_if.cache == "on" and neighbours is not None:
        before, next_soon = neighbours
        shortest = min_cacheable_tokens(model)
        if shortest is not None and total >= shortest:
            read = min(before, total)
            w5 = total - read if next_soon else 0
            w1 = 0
            fresh = total - read - w5
    detail = UsageDetail(server_tools=u.detail.server_tools) if u.detail and u.detail.server_tools else None
    return Usage(
        input_tokens=fresh,
        cache_read_tokens=read,
        cache_write_5m_tokens=w5,
        cache_write_1h_tokens=w1,
        output_tokens=u.output_tokens,
        reasoning_tokens=u.reasoning_tokens,
        detail=detail,
    ), cut


def _session_neighbours(events: list[CostEvent]) -> dict[str, tuple[int, bool]]:
    """Per call in a session: the input the previous call sent (0 when none came within the cache lifetime) and
    whether a next call comes within it (only then is writing the cache worth it)."""
    sessions: dict[str, list[CostEvent]] = {}
    for event in events:
        if event.attribution.session:
            sessions.setdefault(event.attribution.session, []).append(event)
    found: dict[str, tuple[int, bool]] = {}
    for calls in sessions.values():
        for i, event in enumerate(calls):
            before = 0
            if i and (event.timestamp - calls[i - 1].timestamp).total_seconds() <= _CACHE_TTL_S:
                before = calls[i - 1].usage.total_input_tokens
            next_soon = (
                i + 1 < len(calls) and (calls[i + 1].timestamp - event.timestamp).total_seconds() <= _CACHE_TTL_S
            )
            found[event.id] = (before, next_soon)
    return found


def _assumptions(
    what_if: WhatIf, moves: dict[tuple[str, str], int], trimmed: int, events: list[CostEvent]
) -> list[str]:
    notes = []
    for (source, target), count in sorted(moves.items()):
        notes.append(f"{count:,} call(s) from {source} to {target}: input and output token counts unchanged")
    if moves:
        notes.append("another model writes as many output tokens and counts input as the recorded model did")
    if what_if.context:
        notes.append(
            f"context windows cut {trimmed:,} input tokens, uncached input first, cache reads last; output unchanged"
        )
    if what_if.cache == "off":
        notes.append("caching off: every cache read and write billed as plain input")
    if what_if.cache == "on":
        notes.append(
            "caching on: a session's call reads what its previous call sent when it came within 5 minutes, and "
            "writes the rest only when its next call follows within 5 minutes; calls outside a session unchanged; "
            "prefixes below the model's minimum are not cached"
        )
    if what_if.batch:
        notes.append(
            f"batch for {', '.join(sorted(what_if.batch))}: the same calls at the batch price (answers within 24 h)"
        )
    if what_if.prices_at is not None:
        notes.append(f"prices of {what_if.prices_at.date().isoformat()} for every call, not those at call time")
    else:
        notes.append("each call at the catalogue price in force at its own time")
    if any(e.cost.provider_reported or e.cost.fallback_price for e in events):
        notes.append("some actual costs were provider-reported or fallback-priced; the what-if uses the catalogue")
    if what_if.policy is not None and not what_if.policy.routes:
        notes.append(f"the policy {what_if.policy.source or ''} has no routes: models unchanged".replace("  ", " "))
    return notes
