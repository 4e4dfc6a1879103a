"""Admitting a batch: reserve its worst case at batch prices — all of it or none.

The requests for one model are admitted together as one task of N calls (`CallRequest.calls`), each at the
group's mean input and output cap rounded up, so the reservation covers the sum of every request's worst case
and the requests meter counts N. A batch is never rewritten: a decision that would change it (a downgrade, a
smaller output cap, compression, a refusal) refuses the whole batch, in the budget's words, and releases what
other groups of it had reserved. Once the provider has taken the batch, its reservations' leases are stretched
to the completion window (`hold_steps`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from fiscus.attribution import Attribution
from fiscus.batches.drive import Admit, BatchSteps, Hold, Record, Release
from fiscus.batches.lines import BATCH_LEASE_S, BatchLine, deferrable
from fiscus.batches.records import BatchGroup
from fiscus.engine.ports import Amounts
from fiscus.engine.request import CallRequest
from fiscus.events.cost_event import CallStatus
from fiscus.governor import Admission
from fiscus.money import from_nanos


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
    admission: Admission  # the group's that did not fit: its decision says why and until when


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


def admit_steps(
    governor: Any,
    provider: str,
    lines: list[BatchLine],
    attribution: Attribution,
    priority: str,
    overrides: Any = (),
    batch_tag: str = "",
) -> BatchSteps[Admitted | Refused]:
    """Reserve every group of the batch, or none: a refusal releases what was reserved and records one blocked
    event for the group that did not fit."""
    policy = getattr(governor, "policy", None)
    cap = int(getattr(policy, "default_max_tokens", 4096) or 4096)
    if deferrable(policy, attribution) and priority == "normal":
        priority = "background"  # work that can wait never takes the room kept for critical calls
    admitted = Admitted([], [], Decimal(0))
    for model, group in _groups(lines).items():
        asked = _task(provider, model, group, attribution, priority, overrides, cap)
        admission: Admission = yield Admit(asked)
        if not _fits(admission, asked):
            yield from release_steps(admitted.admissions)
            if admission.reservation is not None:
                yield Release(admission.reservation)
            # One refused event, holding no reservation: a refused batch spent nothing and ran no request.
            tags = {"batch": batch_tag or "refused", "batch_requests": str(len(lines))}
            refused = replace(admission, reservation=None)
            yield Record(refused, None, {"status": CallStatus.BLOCKED, "tags": tags})
            retry = _retry_after(admission, governor.now())
            return Refused(_why(admission, asked), retry, admission.event_id, admission)
        reserve = admission.decision.reserve or Amounts()
        admitted.worst_case += from_nanos(reserve.nanos)
        admitted.admissions.append(admission)
        requests = {line.custom_id: (line.input_tokens, line.max_tokens or cap) for line in group}
        admitted.groups.append(
            BatchGroup(model, admission.event_id, admission.decision.action.value, admission.reservation, requests)
        )
    return admitted


def hold_steps(admitted: Admitted) -> BatchSteps[None]:
    """Stretch each reservation's lease over the batch's completion window (from the usual two minutes)."""
    for admission in admitted.admissions:
        if admission.reservation is not None:
            yield Hold(admission.reservation, BATCH_LEASE_S)


def release_steps(admissions: list[Admission]) -> BatchSteps[None]:
    """Give back what these admissions reserved (the batch was refused, or the provider did not take it): nothing
    ran, so nothing is spent and no event is recorded."""
    for admission in admissions:
        if admission.reservation is not None:
            yield Release(admission.reservation)


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
