"""Rolling summarisation in the gateway: for a task class whose policy opts in (`summaries:`), the turns that
have aged out are replaced by a summary before the call is estimated and admitted.

The summary is written by one call to the family's cheapest model (or the rule's `model`), admitted, priced,
settled and recorded as an event of its own — a cost of the summary lever — and kept per session, so each
summary is paid for once. When that call is refused or fails, the request goes on unsummarised.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson

from fiscus.attribution import Attribution
from fiscus.engine.decision import Action
from fiscus.events.cost_event import CallStatus
from fiscus.events.savings import Shaped
from fiscus.gateway.protocol import ParsedRequest, Protocol
from fiscus.gateway.routing import Router
from fiscus.governor import CallRequest, Governor
from fiscus.policy.types import SummaryRule
from fiscus.providers import ProviderError, Upstream, UpstreamRequest
from fiscus.shaping.summarise import SummaryCache, SummaryPlan, plan_summary, summarised, summary_request, summary_text
from fiscus.usage.detect import usage_from_body
from fiscus.usage.estimate import count_request_tokens

log = logging.getLogger("fiscus.gateway")


@dataclass(frozen=True, slots=True)
class Summarised:
    body: dict[str, Any]
    tokens: int  # input tokens the summary took off (the budget's estimate)


class Summariser:
    def __init__(self, governor: Governor, upstream: Upstream, router: Router) -> None:
        self.governor, self.upstream, self.router = governor, upstream, router
        self.cache = SummaryCache()

    async def summarise(
        self,
        protocol: Protocol,
        request: ParsedRequest,
        provider: str,
        attribution: Attribution,
        headers: dict[str, str],
    ) -> Summarised | None:
        """The request with its aged turns summarised, or None to send it as it is."""
        rules = self.governor.policy.summaries
        rule = rules.get(attribution.task_class) if attribution.task_class else None
        if rule is None:
            return None
        fmt = protocol.format
        plan = plan_summary(request.body, fmt, rule)
        if plan is None:
            return None
        session = attribution.session or attribution.api_key or ""
        text = self.cache.get(session, plan.key)
        if text is None:
            model = rule.model or self.governor.policy.ladders.cheapest(request.model)
            if model is None:
                return None  # no ladder says which model is the family's cheapest
            text = await self._write(protocol, plan, rule, model, provider, attribution, headers)
            if text is None:
                return None
            self.cache.put(session, plan.key, text)
        body = summarised(request.body, fmt, plan, text)
        cut = count_request_tokens(request.body, fmt) - count_request_tokens(body, fmt)
        return Summarised(body, cut) if cut > 0 else None

    async def _write(
        self,
        protocol: Protocol,
        plan: SummaryPlan,
        rule: SummaryRule,
        model: str,
        provider: str,
        attribution: Attribution,
        headers: dict[str, str],
    ) -> str | None:
        fmt = protocol.format
        body = summary_request(plan, fmt, model, rule.max_tokens)
        target = self.router.route(model, protocol) or provider
        input_tokens = count_request_tokens(body, fmt)
        admission = await self.governor.aadmit(
            CallRequest(
                provider=target,
                model=model,
                attribution=attribution,
                input_tokens=input_tokens,
                max_tokens=rule.max_tokens,
                cache_writes=False,
            )
        )
        admission.shaped = Shaped(summary_call=True)
        decision = admission.decision
        if not decision.calls_model:
            status = CallStatus.BLOCKED if decision.action is Action.BLOCK else CallStatus.PARTIAL
            await self.governor.asettle(admission, None, status=status)
            return None
        served = decision.model or model
        if served != model or (decision.max_tokens and decision.max_tokens < rule.max_tokens):
            body = summary_request(plan, fmt, served, min(decision.max_tokens or rule.max_tokens, rule.max_tokens))
        upstream = UpstreamRequest(
            provider=self.router.route(served, protocol) or target,
            operation=protocol.operation,  # type: ignore[arg-type]
            model=served,
            body=orjson.dumps(body),
            headers=headers,
            estimated_tokens=input_tokens + rule.max_tokens,
        )
        try:
            answer = await self.upstream.send(upstream)
        except ProviderError as exc:
            await self.governor.asettle(admission, None, status=CallStatus.ERROR, error=str(exc))
            return None
        if not answer.ok:
            error = f"upstream answered {answer.status}"
            await self.governor.asettle(admission, None, status=CallStatus.ERROR, error=error)
            return None
        try:
            data = orjson.loads(answer.body)
            usage = usage_from_body(data, fmt)
        except Exception:  # an odd answer: recorded as failed, the request goes on unsummarised
            log.warning("could not read the summary call's answer")
            await self.governor.asettle(admission, None, status=CallStatus.ERROR, error="unreadable summary answer")
            return None
        await self.governor.asettle(admission, usage, served_model=answer.model, served_provider=answer.provider)
        return summary_text(data, fmt)
