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
from fiscus.sdk.drive import arun, run
from fiscus.sdk.errors import BudgetExhausted
from fiscus.sdk.gate import Gate, Plan, Short
from fiscus.sdk.session import current_session
from fiscus.usage.estimate import estimate_tokens
from fiscus.usage.model import Usage
from fiscus.usage.wire import WireFormat

log = logging.getLogger("fiscus.sdk")


def _refusal(short: Short) -> BaseException:
    """The typed error for a call that reaches no model (a callback cannot hand back a partial answer)."""
    if short.error is not None:
        return short.error
    session = current_session()
    return BudgetExhausted(short.message, state=session.state() if session is not None else None)


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
