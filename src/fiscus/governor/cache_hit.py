"""The ledger event of a call the exact response cache answered (`Governor.record_cache_hit`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson

from fiscus.engine.decision import Action
from fiscus.engine.request import CallRequest
from fiscus.errors import PricingError, StoreError
from fiscus.events.cost_event import CallStatus, CostEvent, new_event_id
from fiscus.events.savings import answered_from_cache
from fiscus.governor.steps import Record, Steps
from fiscus.pricing.cost import Cost
from fiscus.usage.model import Usage

if TYPE_CHECKING:
    from fiscus.governor.governor import Governor


def cache_hit_steps(governor: Governor, request: CallRequest, usage: Usage) -> Steps[CostEvent]:
    """Status cache_hit, no usage and no cost (nothing was billed), and as its saving what the call would have cost
    as asked, priced from `usage` (what the cached answer was billed for). No budget counter is touched: the call
    spends nothing. Recorded through the store's outbox when settles are durable, else handed to the ledger."""
    now = governor.now()
    ungoverned_usd, saved = None, None
    try:
        sheet = governor.engine.sheet(request.provider, request.model, request.batch, now)
        ungoverned_usd, saved = answered_from_cache(usage, asked=sheet)
    except PricingError:  # the model asked for has no price: the hit is recorded, its saving unknown
        pass
    tier = governor.policy.ladders.tier_of(request.model)
    tags = {"response_cache": "hit"}
    if request.passed:  # answered past an open breaker or a loop stop: the ledger names who let it through
        tags["override"] = ",".join(dict.fromkeys(override_id for _, override_id in request.passed))
    event = CostEvent(
        request.provider,
        request.model,
        request.model,
        Usage(),
        Cost(),
        request.attribution,
        CallStatus.CACHE_HIT,
        new_event_id(),
        datetime.fromtimestamp(now, UTC),
        tier.name if tier is not None else None,
        0,
        request.batch,
        False,
        None,
        Action.ALLOW.value,
        tags,
        ungoverned_usd,
        saved,
        policy_version=governor.policy.version,
    )
    ledger = governor.ledger
    if governor.durable_settle:
        try:
            yield Record(event.id, orjson.dumps(event.to_dict()))
        except StoreError:
            ledger.submit(event)  # type: ignore[union-attr]
        else:
            ledger.kick()  # type: ignore[union-attr]
    elif ledger is not None:
        ledger.submit(event)
    governor._recorded(event)
    return event
