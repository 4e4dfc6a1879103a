"""The gateway's answers when no model answers a call: a guard's or a budget's refusal (429 or an honest
partial, by the policy's action) and an upstream failure (an error in the client's protocol, counted). The
rules are `fiscus.gateway.answers`'; this settles each call once and records it in the ledger and metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
from starlette.types import ASGIApp

from fiscus.attribution import Attribution
from fiscus.engine.decision import Action
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.gateway.answers import (
    Outage,
    outage_of_breaker,
    outage_of_error,
    outage_of_status,
    outage_response,
    refusal_response,
    seconds_until,
)
from fiscus.gateway.guards import GuardRefusal, refusal_admission
from fiscus.gateway.protocol import ParsedRequest, Protocol
from fiscus.gateway.relay import cost_trailer
from fiscus.gateway.responses import JSON, SSE, RawResponse
from fiscus.governor import Admission
from fiscus.providers import ProviderError
from fiscus.shaping.partial import (
    BUDGET_EXHAUSTED,
    PARTIAL_HEADER,
    SESSION_CEILING,
    exhausted_text,
    partial_body,
    partial_events,
)

if TYPE_CHECKING:
    from fiscus.gateway.metrics import GatewayMetrics
    from fiscus.governor import Governor
    from fiscus.usage.model import Usage


def usd(event: CostEvent) -> str:
    return format(event.cost.total, "f")


class NoModelAnswers:
    """Mixed into `Gateway`, which provides `governor`, `metrics` and `settle`."""

    governor: Governor
    metrics: GatewayMetrics

    async def settle(
        self,
        admission: Admission,
        usage: Usage | None,
        *,
        provider_failed: bool = False,
        reached_provider: bool = True,
        **kwargs: Any,
    ) -> CostEvent:
        raise NotImplementedError  # `Gateway.settle`

    async def _guarded(
        self,
        protocol: Protocol,
        request: ParsedRequest,
        provider: str,
        attribution: Attribution,
        why: GuardRefusal,
        noted: dict[str, str] | None = None,
    ) -> ASGIApp:
        """A breaker or loop refusal: answered at once, recorded as one ledger event, no provider reached. A
        model's error-rate breaker stands for an outage: a 503 error, whatever `on_open` says."""
        admission = refusal_admission(provider, request.model, attribution, why)
        out = {"x-fiscus-request-id": admission.event_id, "x-fiscus-guard": why.code} | (noted or {})
        if why.outage:
            outage = outage_of_breaker(why.message, seconds_until(why.retry_at))
            event = await self.settle(
                admission, None, status=CallStatus.ERROR, error=why.message[:500], reached_provider=False
            )
            self.metrics.upstream_failure(provider, outage.reason)
            return outage_response(protocol, outage, out | {"x-fiscus-cost-usd": usd(event)})
        self.metrics.decision(why.action)
        if why.action is Action.BLOCK:
            return await self._blocked(protocol, admission, out, code=why.code, text=why.message)
        return await self._partial(protocol, request, admission, out, code=why.code, text=why.text)

    async def _blocked(
        self,
        protocol: Protocol,
        admission: Admission,
        out: dict[str, str],
        *,
        code: str = BUDGET_EXHAUSTED,
        text: str | None = None,
    ) -> ASGIApp:
        """A `block` refusal: 429 with the code and, when known, retry-after (a budget's reset, a breaker's
        reopen time). `text` is a guard's message; None for a budget's refusal."""
        decision = admission.decision
        event = await self.settle(admission, None, status=CallStatus.BLOCKED)
        wait = seconds_until(decision.retry_at)
        out["x-fiscus-cost-usd"] = usd(event)
        if text is None:  # a budget's refusal (a session or prepaid budget never resets: no retry-after)
            out["x-fiscus-budget"] = "exhausted"
            text = f"fiscus budget exhausted: {decision.message or 'budget exhausted'}"
        return refusal_response(protocol, code=code, message=text, retry_after=wait, out=out)

    async def _partial(
        self,
        protocol: Protocol,
        request: ParsedRequest,
        admission: Admission,
        out: dict[str, str],
        *,
        code: str = BUDGET_EXHAUSTED,
        text: str | None = None,
    ) -> ASGIApp:
        """An honest partial answer: a finished reply saying why no model was called, marked in the body
        (`fiscus`) and by the `x-fiscus-partial` header."""
        decision = admission.decision
        event = await self.settle(admission, None, status=CallStatus.PARTIAL)
        text = text or exhausted_text(decision.message)
        marker = {"code": code, "message": decision.message or text, "retry_after": seconds_until(decision.retry_at)}
        out[PARTIAL_HEADER] = code
        if "x-fiscus-guard" not in out:
            out["x-fiscus-budget"] = "exhausted"
        if marker["retry_after"] is not None:
            out["retry-after"] = str(marker["retry_after"])
        fmt = str(protocol.format)
        if request.stream:
            events = partial_events(fmt, model=request.model, text=text, include_usage=request.wants_usage, **marker)
            return RawResponse(b"".join(events) + cost_trailer(usd(event)), 200, out, media=SSE)
        out["x-fiscus-cost-usd"] = usd(event)
        body = orjson.dumps(partial_body(fmt, model=request.model, text=text, **marker))
        return RawResponse(body, 200, out, media=JSON)

    def _budget_code(self, budget: str | None) -> str:
        """The refusal's code: `session_ceiling` for a budget per session, else `budget_exhausted`."""
        policy = getattr(self.governor, "policy", None)
        found = next((b for b in policy.budgets if b.name == budget), None) if policy and budget else None
        return SESSION_CEILING if found is not None and found.window.kind == "session" else BUDGET_EXHAUSTED

    def _upstream_failure(self, protocol: Protocol, provider: str, exc: ProviderError) -> Outage:
        self.metrics.error("upstream")
        outage = outage_of_error(exc)
        self.metrics.upstream_failure(provider, outage.reason)
        return outage

    def _upstream_answered(
        self, protocol: Protocol, provider: str, status: int, body: bytes, headers: Mapping[str, str], out: dict
    ) -> RawResponse:
        """A provider's error answer: an outage (5xx, 529, 429) in the client's protocol with retry-after, and
        counted; a 4xx the request caused relayed as it is."""
        self.metrics.error("upstream")
        media = headers.get("content-type", JSON)
        outage = outage_of_status(protocol, status, dict(headers))
        if outage is None:
            return RawResponse(body, status, out, media=media)
        self.metrics.upstream_failure(provider, outage.reason)
        return outage_response(protocol, outage, out, upstream=body, media=media)
