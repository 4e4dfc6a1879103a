"""Settling a batch once it has ended: every request one `CostEvent` at batch prices, the reservations released.

Results become readable all at once, when the provider ends the batch; the gateway settles them the first time it
sees the batch ended — a poll of the batch (retrieve or list), a fetch of its results or output file, or its own
watch — reading the results from the provider itself when the client has not fetched them. Each request's event
id is derived from the batch and its custom_id, and each group's reservation settles once (the store is idempotent
per reservation, the ledger per event id), so settling again, on any worker, never counts twice.

A request that succeeded is priced from its usage at the batch prices in force when the batch was admitted, its
ungoverned cost the same work sent synchronously (the `batch` lever). One that errored, expired or was cancelled
(or that the results omit) is recorded at zero cost with why, and its share of the reservation is released.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fiscus.engine.decision import Action, Decision
from fiscus.engine.ports import Amounts
from fiscus.engine.request import CallRequest
from fiscus.events.cost_event import CallStatus
from fiscus.gateway.batches_admit import line_event_id
from fiscus.gateway.batches_store import BatchRecord, BatchStore
from fiscus.governor import Admission
from fiscus.money import to_nanos
from fiscus.usage.detect import usage_from_body
from fiscus.usage.model import Usage

log = logging.getLogger("fiscus.gateway")


@dataclass(frozen=True, slots=True)
class ResultLine:
    """One request's result, whatever the provider's format: `outcome` succeeded, errored, expired or canceled."""

    custom_id: str
    outcome: str
    body: dict[str, Any] | None = None  # the answer of a request that succeeded
    error: str | None = None


def _usage(body: dict[str, Any] | None, fmt: str) -> Usage | None:
    try:
        return usage_from_body(body or {}, fmt)
    except Exception:  # an answer without readable usage is still recorded, as an error naming why
        return None


async def settle_batch(
    governor: Any,
    store: BatchStore,
    record: BatchRecord,
    results: dict[str, ResultLine],
    fmt: str,
    *,
    missing: str = "no result for this request",
) -> Decimal:
    """Record every request of `record` and settle its reservations; the batch's total cost. A request the results
    do not name is recorded as not run, with `missing` as why."""
    admitted_at = datetime.fromtimestamp(record.admitted_at, UTC)
    turnaround_ms = max(0, int((time.time() - record.admitted_at) * 1000))
    total_cost = Decimal(0)
    for group in record.groups:
        spent = Amounts()
        share = _share(group.reservation, len(group.requests))
        for custom_id, (input_tokens, cap) in group.requests.items():
            result = results.get(custom_id) or ResultLine(custom_id, "expired", error=missing)
            request = CallRequest(
                record.provider, group.model, record.attribution, input_tokens, cap, record.priority, batch=True
            )
            decision = Decision(Action(group.action), group.model, group.model, cap)
            event_id = line_event_id(group.event_id, custom_id)
            admission = Admission(request, decision, None, event_id, admitted_at, time.perf_counter())
            tags = {"batch": record.id, "custom_id": custom_id}
            usage = _usage(result.body, fmt) if result.outcome == "succeeded" else None
            if usage is not None:
                event = await governor.asettle(admission, usage, latency_ms=turnaround_ms, tags=tags)
                nanos = share if "unpriced" in event.tags else to_nanos(event.cost.total)
                spent += Amounts(nanos, usage.total_tokens, 1)
                total_cost += event.cost.total
                continue
            why = result.error or f"batch request {result.outcome}"
            if result.outcome == "succeeded":
                why = "the provider's usage could not be read"
            await governor.asettle(
                admission, None, status=CallStatus.ERROR, error=why[:500], latency_ms=turnaround_ms, tags=tags
            )
            ran = result.outcome in ("errored", "succeeded")
            spent += Amounts(0, 0, 1 if ran else 0)
        if group.reservation is not None:
            await governor.store.asettle(group.reservation, spent, now=governor.now())
    await asyncio.to_thread(store.mark_settled, record.id)
    return total_cost


def _share(reservation: Any, requests: int) -> int:
    """One request's part of its group's reservation: kept as spent for a result that cannot be priced."""
    if reservation is None or not reservation.lines or not requests:
        return 0
    return int(reservation.lines[0].amount.nanos // requests)
