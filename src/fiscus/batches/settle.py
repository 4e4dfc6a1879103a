"""Settling a batch once it has ended: every request one `CostEvent` at batch prices, the reservations released.

Each request's event id is derived from the batch and its custom_id, and each group's reservation settles once
(the store is idempotent per reservation, the ledger per event id), so settling again — by another worker, or
the other door — never counts twice.

A request that succeeded is priced from its usage at the batch prices in force when the batch was admitted, its
ungoverned cost the same work sent synchronously (the `batch` lever). One that errored, expired or was cancelled
(or that the results omit) is recorded at zero cost with why, and its share of the reservation is released.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fiscus.batches.drive import BatchSteps, Record, Release
from fiscus.batches.lines import line_event_id
from fiscus.batches.records import BatchRecord
from fiscus.batches.results import ResultLine
from fiscus.engine.decision import Action, Decision
from fiscus.engine.ports import Amounts
from fiscus.engine.request import CallRequest
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.governor import Admission
from fiscus.money import to_nanos
from fiscus.usage.detect import usage_from_body
from fiscus.usage.model import Usage
from fiscus.usage.wire import WireFormat


def _usage(body: dict[str, Any] | None, fmt: WireFormat) -> Usage | None:
    try:
        return usage_from_body(body or {}, fmt)
    except Exception:  # an answer without readable usage is still recorded, as an error naming why
        return None


def settle_steps(
    record: BatchRecord,
    results: dict[str, ResultLine],
    fmt: WireFormat,
    *,
    missing: str = "no result for this request",
) -> BatchSteps[Decimal]:
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
                event: CostEvent = yield Record(admission, usage, {"latency_ms": turnaround_ms, "tags": tags})
                nanos = share if "unpriced" in event.tags else to_nanos(event.cost.total)
                spent += Amounts(nanos, usage.total_tokens, 1)
                total_cost += event.cost.total
                continue
            why = result.error or f"batch request {result.outcome}"
            if result.outcome == "succeeded":
                why = "the provider's usage could not be read"
            outcome = {"status": CallStatus.ERROR, "error": why[:500], "latency_ms": turnaround_ms, "tags": tags}
            yield Record(admission, None, outcome)
            ran = result.outcome in ("errored", "succeeded")
            spent += Amounts(0, 0, 1 if ran else 0)
        if group.reservation is not None:
            yield Release(group.reservation, spent)
    return total_cost


def _share(reservation: Any, requests: int) -> int:
    """One request's part of its group's reservation: kept as spent for a result that cannot be priced."""
    if reservation is None or not reservation.lines or not requests:
        return 0
    return int(reservation.lines[0].amount.nanos // requests)
