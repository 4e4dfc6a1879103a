"""Rolling summarisation for wrapped clients: the gateway's core (`fiscus.shaping.summarise`) in process.

For a task class whose policy opts in (`summaries:`), the turns that have aged out are replaced by a summary
before the call is estimated and admitted. The summary is written by one call, through the wrapped client
itself, to the family's cheapest model (or the rule's `model`), admitted against the same budgets, priced,
settled and recorded as an event of its own (a cost of the summary lever), and kept per session on the wrapped
client, so each summary is paid for once. When that call is refused or fails, the request goes on unsummarised.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from fiscus.attribution import Attribution
from fiscus.engine.decision import Action
from fiscus.events.cost_event import CallStatus
from fiscus.events.savings import Shaped
from fiscus.governor import CallRequest
from fiscus.policy.types import SummaryRule
from fiscus.sdk.drive import CallModel, CallSteps, ParseRaw
from fiscus.sdk.objects import usage_of
from fiscus.sdk.session import current_session
from fiscus.shaping.summarise import SummaryPlan, plan_summary, summarised, summary_request, summary_text
from fiscus.usage.estimate import count_request_tokens
from fiscus.usage.model import Usage

if TYPE_CHECKING:
    from fiscus.sdk.calls import Endpoint
    from fiscus.sdk.gate import Gate

log = logging.getLogger("fiscus.sdk")


def summary_steps(gate: Gate, endpoint: Endpoint, kwargs: dict[str, Any], *, raw: bool) -> CallSteps[tuple[Any, int]]:
    """(the call's kwargs with its aged turns summarised, input tokens the summary took off); the kwargs as
    they were and 0 when the task class does not opt in or nothing has aged out."""
    policy = getattr(gate.governor, "policy", None)
    rules = policy.summaries if policy is not None else None
    if not rules:
        return kwargs, 0
    session = current_session()
    attribution = gate.attribution if session is None else session.attribution_for(gate.attribution)
    rule = rules.get(attribution.task_class) if attribution.task_class else None
    if rule is None:
        return kwargs, 0
    fmt = endpoint.fmt
    plan = plan_summary(kwargs, fmt, rule)
    if plan is None:
        return kwargs, 0
    owner = attribution.session or attribution.api_key or ""
    text = gate.summaries.get(owner, plan.key)
    if text is None:
        model = rule.model or policy.ladders.cheapest(str(kwargs.get("model", "")))  # type: ignore[union-attr]
        if model is None:
            return kwargs, 0  # no ladder says which model is the family's cheapest
        text = yield from _write(gate, endpoint, plan, rule, model, attribution, raw=raw)
        if text is None:
            return kwargs, 0
        gate.summaries.put(owner, plan.key, text)
    body = summarised(kwargs, fmt, plan, text)
    cut = count_request_tokens(kwargs, fmt) - count_request_tokens(body, fmt)
    return (body, cut) if cut > 0 else (kwargs, 0)


def _write(
    gate: Gate,
    endpoint: Endpoint,
    plan: SummaryPlan,
    rule: SummaryRule,
    model: str,
    attribution: Attribution,
    *,
    raw: bool,
) -> CallSteps[str | None]:
    """The summary call: admitted, made through the wrapped client, settled as its own event."""
    governor, fmt = gate.governor, endpoint.fmt
    body = summary_request(plan, fmt, model, rule.max_tokens)
    request = CallRequest(
        provider=endpoint.provider,
        model=model,
        attribution=attribution,
        input_tokens=count_request_tokens(body, fmt),
        max_tokens=rule.max_tokens,
        cache_writes=False,
    )
    admission = yield from governor.admit_steps(request)
    admission.shaped = Shaped(summary_call=True)
    decision = admission.decision
    if not decision.calls_model:
        status = CallStatus.BLOCKED if decision.action is Action.BLOCK else CallStatus.PARTIAL
        yield from governor.settle_steps(admission, None, status=status)
        return None
    served = decision.model or model
    cap = min(decision.max_tokens or rule.max_tokens, rule.max_tokens)
    if served != model or cap != rule.max_tokens:
        body = summary_request(plan, fmt, served, cap)
    try:
        response = yield CallModel(body)
        if raw:
            response = yield ParseRaw(response)
    except Exception as exc:  # the request goes on unsummarised; the failed call is still one event
        log.warning("fiscus: the summary call failed (%s); sending the conversation unsummarised", type(exc).__name__)
        error = f"summary call: {type(exc).__name__}"
        yield from governor.settle_steps(admission, None, status=CallStatus.ERROR, error=error)
        return None
    usage = usage_of(fmt, response) or Usage(input_tokens=request.input_tokens, estimated=True)
    yield from governor.settle_steps(admission, usage, served_model=served)
    answer = response.model_dump() if hasattr(response, "model_dump") else response
    return summary_text(answer, fmt)


def with_summary(admission: Any, tokens: int) -> None:
    """Book on the main call's admission what the summary took off (beside what a context window cut)."""
    if not tokens or admission is None:
        return
    shaped = admission.shaped
    admission.shaped = Shaped(context_tokens=shaped.context_tokens if shaped else 0, summary_tokens=tokens)
