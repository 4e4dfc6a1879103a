"""Governing calls a framework makes itself, seen only through its callbacks (LangChain, the Agents SDK).

A callback cannot change the request, so of a decision it can apply only the refusals: a call that should
reach no model raises the typed error (frameworks stop the run on it). A downgrade, a compression or an output
cap the budgets asked for is logged, not applied: wrap the framework's client with `fiscus.wrap` for those.
Session ceilings, breakers and loop guards work as for a wrapped client.
"""

from __future__ import annotations

import logging
from typing import Any

from fiscus.attribution import Attribution
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.governor.steps import Steps
from fiscus.sdk.calls import admit_steps
from fiscus.sdk.claims import Claim, board_of, fingerprint
from fiscus.sdk.drive import arun, run
from fiscus.sdk.errors import BudgetExhausted, GuardRefused
from fiscus.sdk.gate import Gate, Plan, Short
from fiscus.sdk.session import current_session
from fiscus.shaping.partial import BREAKER_OPEN, LOOP_DETECTED
from fiscus.usage.estimate import estimate_tokens
from fiscus.usage.model import Usage
from fiscus.usage.wire import WireFormat

log = logging.getLogger("fiscus.sdk")


def _refusal(short: Short) -> BaseException:
    """The typed error for a call that reaches no model (a callback cannot hand back a partial answer)."""
    if short.error is not None:
        return short.error
    session = current_session()
    state = session.state() if session is not None else None
    if short.code in (BREAKER_OPEN, LOOP_DETECTED):
        return GuardRefused(short.message, code=short.code, retry_at=short.retry_at, state=state)
    return BudgetExhausted(short.message, state=state, retry_at=short.retry_at, code=short.code)


def _unapplied(plan: Plan) -> None:
    """Say which parts of the decision a callback could not apply."""
    admission = plan.admission
    if admission is None:
        return
    decision = admission.decision
    wanted = []
    if decision.downgraded or decision.model != decision.requested_model:
        wanted.append(f"downgrade to {decision.model}")
    if decision.compress_to_tokens:
        wanted.append(f"compression to {decision.compress_to_tokens} tokens")
    if wanted:
        log.warning(
            "fiscus: the budget asked for %s, which a callback cannot apply; wrap the model's client with "
            "fiscus.wrap to apply it",
            " and ".join(wanted),
        )


class ObservedCalls:
    """Admit before a framework's model call, settle after it; one `Plan` per call, held by the caller."""

    def __init__(self, gate: Gate, provider: str) -> None:
        self.gate = gate
        self.provider = provider
        self._deferred: dict[int, tuple[Claim, WireFormat, dict[str, Any], str | None]] = {}

    def governs_below(self, governor: Any) -> bool:
        """Whether a governed client on `governor` makes the call: then it, not this observer, records it."""
        return governor is self.gate.governor

    def _prepare(
        self, fmt: WireFormat, body: dict[str, Any], attribution: Attribution | None, provider: str | None
    ) -> Plan | Short:
        max_key = "max_output_tokens" if fmt is WireFormat.OPENAI_RESPONSES else "max_tokens"
        return self.gate.prepare(fmt, provider or self.provider, body, max_key, attribution)

    def _start_steps(
        self, fmt: WireFormat, body: dict[str, Any], attribution: Attribution | None, provider: str | None
    ) -> Steps[Plan]:
        plan = yield from admit_steps(self.gate, self._prepare(fmt, body, attribution, provider))
        if isinstance(plan, Short):
            raise _refusal(plan)
        _unapplied(plan)
        return plan

    def start(
        self,
        fmt: WireFormat,
        body: dict[str, Any],
        attribution: Attribution | None = None,
        provider: str | None = None,
    ) -> Plan:
        """Admit the call described by `body` (model, messages or input, max tokens); raise if refused."""
        return run(self._start_steps(fmt, body, attribution, provider), self.gate.governor.store)

    async def astart(
        self,
        fmt: WireFormat,
        body: dict[str, Any],
        attribution: Attribution | None = None,
        provider: str | None = None,
    ) -> Plan:
        return await arun(self._start_steps(fmt, body, attribution, provider), self.gate.governor.store)

    # -- calls a governed client makes (see `fiscus.sdk.claims`) -------------------------------------------------

    def defer(
        self, fmt: WireFormat, body: dict[str, Any], attribution: Attribution | None = None, provider: str | None = None
    ) -> Claim:
        """Leave the call to the governed client that will make it: a claim with this call's attribution."""
        claim = Claim(fingerprint(fmt, body), attribution or self.gate.attribution)
        self._deferred[id(claim)] = (claim, fmt, body, provider)
        board_of(self.gate.governor).put(claim)
        return claim

    def _deferred_steps(
        self, claim: Claim, usage: Usage | None, text: str, tool_calls: tuple[Any, ...], error: BaseException | None
    ) -> Steps[CostEvent | None]:
        board_of(self.gate.governor).drop(claim)
        found = self._deferred.pop(id(claim), None)
        if claim.taken or found is None:
            return None  # the governed client recorded it (every retry too)
        # The call went around the governed client: recorded now, from what the framework reports.
        log.warning("fiscus: a model call did not go through the governed client; recorded from its callback")
        _, fmt, body, provider = found
        gate, session = self.gate, current_session()
        attribution = session.attribution_for(claim.attribution) if session is not None else claim.attribution
        max_key = "max_output_tokens" if fmt is WireFormat.OPENAI_RESPONSES else "max_tokens"
        model = str(body.get("model", ""))
        request = gate._request(provider or self.provider, model, attribution, body, fmt, body.get(max_key))
        admission = yield from gate.governor.admit_steps(request)
        plan = Plan(gate, fmt, body, admission=admission, request=request, session=session, agent=attribution.agent)
        event = yield from self._end_steps(plan, usage, text, tool_calls, None, error)
        return event

    def end_deferred(
        self,
        claim: Claim,
        usage: Usage | None,
        *,
        text: str = "",
        tool_calls: tuple[Any, ...] = (),
        error: BaseException | None = None,
    ) -> CostEvent | None:
        return run(self._deferred_steps(claim, usage, text, tool_calls, error), self.gate.governor.store)

    async def aend_deferred(
        self,
        claim: Claim,
        usage: Usage | None,
        *,
        text: str = "",
        tool_calls: tuple[Any, ...] = (),
        error: BaseException | None = None,
    ) -> CostEvent | None:
        return await arun(self._deferred_steps(claim, usage, text, tool_calls, error), self.gate.governor.store)

    def _end_steps(
        self,
        plan: Plan,
        usage: Usage | None,
        text: str,
        tool_calls: tuple[Any, ...],
        model: str | None,
        error: BaseException | None,
    ) -> Steps[CostEvent]:
        if usage is None and error is None:  # the framework reported none: estimate, flagged
            usage = Usage(input_tokens=plan.input_tokens, output_tokens=estimate_tokens(text), estimated=True)
        requested = plan.request.model if plan.request else None
        event = yield from self.gate.governor.settle_steps(
            plan.admission,
            usage,
            status=CallStatus.ERROR if error is not None else CallStatus.OK,
            # what was really called: the request as the framework sent it, whatever the decision wanted
            served_model=model or requested,
            error=None if error is None else f"{type(error).__name__}: {error}"[:500],
        )
        plan.after(event, output=text, tool_calls=tool_calls)
        return event  # type: ignore[no-any-return]

    def end(
        self,
        plan: Plan,
        usage: Usage | None,
        *,
        text: str = "",
        tool_calls: tuple[Any, ...] = (),
        model: str | None = None,
        error: BaseException | None = None,
    ) -> CostEvent:
        return run(self._end_steps(plan, usage, text, tool_calls, model, error), self.gate.governor.store)

    async def aend(
        self,
        plan: Plan,
        usage: Usage | None,
        *,
        text: str = "",
        tool_calls: tuple[Any, ...] = (),
        model: str | None = None,
        error: BaseException | None = None,
    ) -> CostEvent:
        return await arun(self._end_steps(plan, usage, text, tool_calls, model, error), self.gate.governor.store)
