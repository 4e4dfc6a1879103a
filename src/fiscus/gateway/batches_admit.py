"""Admitting a batch: read each request as its endpoint would, then reserve the batch's worst case at batch prices —
all of it or none.

The requests for one model are admitted together as one task of N calls (`CallRequest.calls`), each at the
group's mean input and output cap rounded up, so the reservation covers the sum of every request's worst case
and the requests meter counts N. A batch is never rewritten: a decision that would change it (a downgrade, a
smaller output cap, compression, a refusal) refuses the whole batch, in the budget's words, and releases what
other groups of it had reserved. The reservation's lease is stretched to the batch's completion window.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import orjson

from fiscus.attribution import Attribution
from fiscus.engine.ports import Amounts
from fiscus.engine.request import CallRequest
from fiscus.events.cost_event import CallStatus
from fiscus.gateway.batches_store import BatchGroup
from fiscus.gateway.protocol import BadRequest, Protocol, parse_request
from fiscus.governor import Admission
from fiscus.money import from_nanos
from fiscus.usage.estimate import anthropic_cache_write_bound, count_request_tokens

BATCH_LEASE_S = 25 * 3600.0  # the 24 h completion window, and an hour to poll the results in
MAX_REQUESTS = 100_000


@dataclass(frozen=True, slots=True)
class BatchLine:
    """One request of a batch, as estimated before it is sent."""

    custom_id: str
    model: str
    input_tokens: int
    max_tokens: int | None
    cache_write_tokens: int  # the most input it may write to the prompt cache (0: it writes none)


def read_line(protocol: Protocol, custom_id: str, body: Any) -> BatchLine:
    """A request of the batch, or `BadRequest` naming it."""
    if not isinstance(body, dict):
        raise BadRequest(f"batch request {custom_id!r}: its body must be a JSON object", param="body")
    raw = orjson.dumps(body)
    try:
        parsed = parse_request(protocol, raw)
    except BadRequest as exc:
        exc.message = f"batch request {custom_id!r}: {exc.message}"
        raise
    if parsed.stream:
        raise BadRequest(f"batch request {custom_id!r}: stream is not supported in a batch", param="stream")
    tokens = count_request_tokens(parsed.body, protocol.format)
    writes = 0
    if protocol.anthropic and b'"cache_control"' in raw:
        bound = anthropic_cache_write_bound(parsed.body)
        writes = tokens if bound is None else min(bound, tokens)
    return BatchLine(custom_id, parsed.model, tokens, parsed.max_tokens, writes)


def deferrable(policy: Any, attribution: Attribution) -> bool:
    """Whether the policy marks the batch's task class deferrable."""
    return attribution.task_class is not None and attribution.task_class in getattr(policy, "deferrable", ())


def line_event_id(group_event_id: str, custom_id: str) -> str:
    """The ledger id of one request's result: the same however often, and by whichever worker, it is settled."""
    return str(uuid.uuid5(uuid.UUID(group_event_id), custom_id))


@dataclass(slots=True)
class Admitted:
    groups: list[BatchGroup]
    admissions: list[Admission]
    worst_case: Decimal

    @property
    def action(self) -> str:
        return max((a.decision.action for a in self.admissions), key=lambda action: action.severity).value


@dataclass(slots=True)
class Refused:
    message: str
    retry_after_s: int
    event_id: str


def _groups(lines: list[BatchLine]) -> dict[str, list[BatchLine]]:
    groups: dict[str, list[BatchLine]] = {}
    for line in lines:
        groups.setdefault(line.model, []).append(line)
    return groups


def _task(
    provider: str, model: str, lines: list[BatchLine], attribution: Attribution, priority: str, overrides: Any, cap: int
) -> CallRequest:
    n = len(lines)
    writes = sum(line.cache_write_tokens for line in lines)
    return CallRequest(
        provider=provider,
        model=model,
        attribution=attribution,
        input_tokens=math.ceil(sum(line.input_tokens for line in lines) / n),
        max_tokens=math.ceil(sum(line.max_tokens or cap for line in lines) / n),
        priority=priority,
        overrides=overrides,
        batch=True,
        calls=n,
        cache_writes=writes > 0,
        cache_write_tokens=math.ceil(writes / n),
    )


def _fits(admission: Admission, asked: CallRequest) -> bool:
    d = admission.decision
    return (
        d.calls_model
        and admission.reservation is not None
        and d.model == asked.model
        and (d.max_tokens or 0) >= (asked.max_tokens or 0)
        and not d.compress_to_tokens
    )


async def admit_batch(
    governor: Any,
    provider: str,
    lines: list[BatchLine],
    attribution: Attribution,
    priority: str,
    overrides: Any = (),
    batch_tag: str = "",
) -> Admitted | Refused:
    """Reserve every group of the batch, or none: a refusal releases what was reserved and records one blocked
    event for the group that did not fit."""
    policy = getattr(governor, "policy", None)
    cap = int(getattr(policy, "default_max_tokens", 4096) or 4096)
    if deferrable(policy, attribution) and priority == "normal":
        priority = "background"  # work that can wait never takes the room kept for critical calls
    admitted = Admitted([], [], Decimal(0))
    for model, group in _groups(lines).items():
        asked = _task(provider, model, group, attribution, priority, overrides, cap)
        admission = await governor.aadmit(asked)
        if not _fits(admission, asked):
            await release(governor, admitted.admissions)
            if admission.reservation is not None:
                await governor.store.asettle(admission.reservation, Amounts(), now=governor.now())
            # One refused event, holding no reservation: a refused batch spent nothing and ran no request.
            tags = {"batch": batch_tag or "refused", "batch_requests": str(len(lines))}
            refused = replace(admission, reservation=None)
            await governor.asettle(refused, None, status=CallStatus.BLOCKED, tags=tags)
            return Refused(_why(admission, asked), _retry_after(admission, governor.now()), admission.event_id)
        reserve = admission.decision.reserve or Amounts()
        admitted.worst_case += from_nanos(reserve.nanos)
        admitted.admissions.append(admission)
        requests = {line.custom_id: (line.input_tokens, line.max_tokens or cap) for line in group}
        admitted.groups.append(
            BatchGroup(model, admission.event_id, admission.decision.action.value, admission.reservation, requests)
        )
    return admitted


async def hold(governor: Any, admitted: Admitted) -> None:
    """Stretch each reservation's lease over the batch's completion window (from the usual two minutes)."""
    now = governor.now()
    for admission in admitted.admissions:
        if admission.reservation is not None:
            await governor.store.arenew(admission.reservation, now=now, lease_seconds=BATCH_LEASE_S)


async def release(governor: Any, admissions: list[Admission]) -> None:
    """Give back what these admissions reserved (the batch was refused, or the provider did not take it): nothing
    ran, so nothing is spent and no event is recorded."""
    now = governor.now()
    for admission in admissions:
        if admission.reservation is not None:
            await governor.store.asettle(admission.reservation, Amounts(), now=now)


def _why(admission: Admission, asked: CallRequest) -> str:
    d = admission.decision
    if not d.calls_model or admission.reservation is None:
        what = d.message or "budget exhausted"
    elif d.model != asked.model:
        what = f"the budget would move it to {d.model}, and a batch is not rewritten"
    else:
        what = d.message or "its worst case does not fit the budget"
    return f"fiscus budget: the batch's {asked.calls} request(s) for {asked.model} do not fit ({what})"


def _retry_after(admission: Admission, now: float) -> int:
    at = admission.decision.retry_at
    return max(1, math.ceil(at.timestamp() - now)) if at is not None else 60
