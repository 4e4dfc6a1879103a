"""The SDK's side of the pipeline for one call: guards → count → admit → shape → (call) → settle.

`Gate.prepare` runs the guards and builds the `CallRequest`; the caller admits it (sync or async);
`Gate.shape` applies the decision to the request or answers `Short` (no model call: a partial answer or a
typed error). After the call, `Plan.finish_args` and `Plan.after` settle the session, breakers and loops.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from fiscus.attribution import Attribution
from fiscus.engine.decision import Action, Decision
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.events.guard_events import LoopDetected
from fiscus.events.savings import Shaped
from fiscus.governor import Admission, CallRequest
from fiscus.guards.loops import Detection, LoopConfig, LoopDetector
from fiscus.guards.overridable import LOOP, GuardOverrides, key_grant, passed_scopes
from fiscus.guards.registry import BreakerRegistry
from fiscus.pricing.catalogue import PriceCatalogue
from fiscus.pricing.sheet import PriceSheet
from fiscus.sdk import claims, refusals
from fiscus.sdk.errors import BudgetBlocked, seconds_until
from fiscus.sdk.failures import provider_failure
from fiscus.sdk.override_grants import grants
from fiscus.sdk.request_text import last_content, writes_cache
from fiscus.sdk.session import Session, current_session, emit
from fiscus.shaping.cache import CachePlacer
from fiscus.shaping.compress import compress
from fiscus.shaping.partial import BUDGET_EXHAUSTED, LOOP_DETECTED, SESSION_CEILING
from fiscus.shaping.summarise import SummaryCache
from fiscus.usage.bounds import input_fields
from fiscus.usage.model import Usage
from fiscus.usage.wire import WireFormat

log = logging.getLogger("fiscus.sdk")
WARN_EVERY_S = 60.0
MIN_OUTPUT_TOKENS = 16
_ZERO = Decimal(0)


@dataclass(slots=True)
class Short:
    """No model call: answer with a partial object (`error` None) or raise `error`. Settle `admission` first."""

    message: str
    model: str
    error: Exception | None = None
    admission: Admission | None = None
    status: CallStatus = CallStatus.PARTIAL
    unadmitted: CallRequest | None = None  # stopped before admission: recorded with `governor.record`
    code: str = BUDGET_EXHAUSTED  # the marker's (or the error's) machine-readable reason
    retry_at: datetime | None = None  # when asking again may be answered, if known

    @property
    def retry_after(self) -> int | None:
        return seconds_until(self.retry_at)


@dataclass(slots=True)
class Plan:
    """One admitted call on its way out."""

    gate: Gate
    fmt: WireFormat
    kwargs: dict[str, Any]
    admission: Admission | None = None
    request: CallRequest | None = None
    session: Session | None = None
    agent: str | None = None
    reserved: Decimal = Decimal(0)
    hide_usage_chunk: bool = False
    caller_wants_usage: bool = False
    settled: bool = False
    max_key: str = "max_tokens"  # the request's output-cap parameter, set to the admitted cap
    provider_failed: bool = False  # the call failed on the provider's side: fed to its error-rate breaker
    served_provider: str | None = None  # a route out of the family: the other provider that answers

    @property
    def input_tokens(self) -> int:
        return self.request.input_tokens if self.request else 0

    def finish_args(self, usage: Usage | None, *, error: BaseException | None, streamed: bool) -> dict[str, Any]:
        """Keyword arguments for `governor.settle` (after `admission`)."""
        self.provider_failed = provider_failure(error)
        return {
            "status": CallStatus.ERROR if error is not None else CallStatus.OK,
            "served_model": self.kwargs.get("model"),
            "error": None if error is None else f"{type(error).__name__}: {error}"[:500],
            "streamed": streamed,
            "served_provider": self.served_provider,
        }

    def after(self, event: CostEvent | None, *, output: str = "", tool_calls: tuple[Any, ...] = ()) -> None:
        """Book the settled call in the session chain, the breakers and the loop detectors."""
        if self.settled:
            return
        self.settled = True
        if event is not None:
            cost, usage = event.cost.total, event.usage
            tokens = (  # Usage.total_tokens, without its three property calls
                usage.input_tokens
                + usage.cache_read_tokens
                + usage.cache_write_5m_tokens
                + usage.cache_write_1h_tokens
                + usage.output_tokens
            )
        else:
            cost, tokens = _ZERO, 0
        if self.session is not None:
            self.session.settle(self.reserved, cost, tokens)
            self.session.calls_governor = self.gate.governor  # where `session.outcome = …` is recorded
        state = self.session.state() if self.session is not None else None
        request = self.request
        provider = request.provider if request else None
        model = str(self.kwargs.get("model") or request.model) if request else None
        ok = not self.provider_failed  # a 4xx the request caused opens nothing
        passed = passed_scopes(request.passed) if request is not None and request.passed else frozenset()
        for trip in self.gate.breakers.record(
            self.agent, cost=cost, ok=ok, state=state, provider=provider, model=model, passed=passed
        ):
            emit(trip, self.gate.governor)
        gate = self.gate
        for detector, owner in gate._outside if self.session is None else gate.detectors(self.session):
            found = detector.after_call(tool_calls=tool_calls, output=output, tokens=tokens)
            if found is not None:
                gate.on_loop(found, owner, self.agent)


class Gate:
    """What one wrapped client shares across its calls."""

    def __init__(
        self,
        governor: Any,
        attribution: Attribution,
        *,
        on_exhausted: str = "partial",
        on_breaker_open: str = "partial",
        breakers: BreakerRegistry,
        loops: LoopConfig | None = None,
        on_warn: Callable[[Decision, Attribution], None] | None = None,
        priority: str = "normal",
        cache_placer: CachePlacer | None = None,
        overrides: Any | None = None,
        overridable: GuardOverrides | None = None,
    ) -> None:
        if on_exhausted not in ("partial", "raise"):
            raise ValueError(f'on_exhausted must be "partial" or "raise", got {on_exhausted!r}')
        self.governor = governor
        self.attribution = attribution
        self.on_exhausted = on_exhausted
        if on_breaker_open not in refusals.ON_BREAKER_OPEN:
            raise ValueError(f'on_breaker_open must be "partial" or "block", got {on_breaker_open!r}')
        self.on_breaker_open = on_breaker_open  # `guards.breakers.on_open`: the gateway's answer too
        self.breakers = breakers
        # Outside a session there is no run to stop, so a loop only warns unless the caller configured otherwise.
        self.loops = loops or LoopConfig(action="warn")
        self._session_loops = loops  # what a session that sets no loop checks of its own runs with
        self.detector = LoopDetector(self.loops)  # for calls made outside any session
        self._outside: tuple[tuple[LoopDetector, Session | None], ...] = ((self.detector, None),)
        self.on_warn = on_warn
        self.priority = priority
        self.cache_placer = cache_placer  # Anthropic prompt-cache breakpoints on repeated prefixes, when set
        self.summaries = SummaryCache()  # rolling summaries written for this client's calls, per session
        self.overrides = overrides  # the granted overrides (`fiscus.sdk.override_grants`), when kept
        self.overridable = overridable or GuardOverrides()  # `guards.overridable`: what a key's override passes
        self.catalogue: PriceCatalogue = getattr(governor, "catalogue", None) or _shared_catalogue()
        self._sheets: dict[tuple[str, str], PriceSheet] = {}
        self._warned: dict[tuple[str | None, str], float] = {}  # (agent, loop kind) → when last announced

    # --- before the call -------------------------------------------------------------------------------------

    def detectors(self, session: Session | None) -> Sequence[tuple[LoopDetector, Session | None]]:
        if session is None:
            return self._outside
        if self._session_loops is not None:
            for node in session.chain():
                node.default_loops(self._session_loops)
        return [(node.detector, node) for node in session.chain()]

    def prepare(
        self,
        fmt: WireFormat,
        provider: str,
        kwargs: dict[str, Any],
        max_key: str,
        attribution: Attribution | None = None,  # this call's own, e.g. a framework's agent name; else the client's
    ) -> Plan | Short:
        session = current_session()
        attribution = attribution or self.attribution
        claim = claims.take(self.governor, fmt, kwargs)  # an observer's (LangChain, Agents SDK) left to this call
        if claim is not None:
            attribution = claims.claimed_attribution(attribution, claim)
        if session is not None:
            attribution = session.attribution_for(attribution)
        if self.cache_placer is not None and fmt is WireFormat.ANTHROPIC:  # before the estimate: it reserves the write
            windows = getattr(getattr(self.governor, "policy", None), "context", None) or {}
            window = windows.get(attribution.task_class) if attribution.task_class else None
            kwargs = self.cache_placer.place(kwargs, window_tokens=window) or kwargs
        request = self._request(provider, str(kwargs.get("model", "")), attribution, kwargs, fmt, kwargs.get(max_key))
        short, passed = self._guard(fmt, kwargs, request, session)
        if short is not None:
            short.unadmitted = request  # stopped before admission, still one (zero-cost) ledger event
            return short
        if passed:
            request = replace(request, passed=passed)
        if session is not None and session.ceiling_usd is not None:
            room = session.remaining() or Decimal(0)
            wanted = request.max_tokens or getattr(getattr(self.governor, "policy", None), "default_max_tokens", 4096)
            fitted = _fit(self._sheet(provider, request.model), request.input_tokens, wanted, room)
            if fitted is None:
                session.stop("ceiling", f"ceiling ${session.ceiling_usd} reached")
                short = self._exhausted(
                    f"session ceiling ${_ceiling(session)} reached", request.model, session, code=SESSION_CEILING
                )
                short.unadmitted = request
                return short
            request = replace(request, max_tokens=fitted)
        return Plan(self, fmt, kwargs, request=request, session=session, agent=attribution.agent, max_key=max_key)

    def _guard(
        self, fmt: WireFormat, kwargs: dict[str, Any], request: CallRequest, session: Session | None
    ) -> tuple[Short | None, tuple[tuple[str, str], ...]]:
        """A stopped session, an open breaker or a loop: the call goes no further. A key's override passes those
        `guards.overridable` names: (the refusal that stands, or None; what was passed, with the override's id)."""
        agent, model = request.attribution.agent, request.model
        grant = key_grant(request.overrides) if self.overridable else None
        loop_grant = grant if grant is not None and self.overridable.loop else None
        passed: tuple[tuple[str, str], ...] = ()
        if session is not None and session.stopped:
            stopped = refusals.session_stopped(self, session, model)
            if loop_grant is None or stopped.code != LOOP_DETECTED:
                return stopped, ()
            passed = ((LOOP, loop_grant),)
        breaker, scopes = self.breakers.check_passing(
            agent,
            provider=request.provider,
            model=model,
            key=request.attribution.api_key,
            passable=self.overridable.breaker if grant is not None else None,
        )
        if breaker is not None:
            return refusals.breaker_open(self, breaker, request.provider, model, session), ()
        if grant is not None and scopes:
            passed = (*((scope, grant) for scope in scopes), *passed)
        if session is not None and session.stopped:  # its loop was told once, when it stopped it
            return None, passed
        content, tool_results = last_content(fmt, kwargs)
        for detector, owner in self._outside if session is None else self.detectors(session):
            found = detector.before_call(agent=agent, content=content, tool_results=tool_results)
            short = self.on_loop(found, owner, agent, model=model) if found is not None else None
            if short is not None:
                if loop_grant is None:
                    return short, ()
                if (LOOP, loop_grant) not in passed:
                    passed = (*passed, (LOOP, loop_grant))
        return None, passed

    def _request(
        self,
        provider: str,
        model: str,
        attribution: Attribution,
        kwargs: Mapping[str, Any],
        fmt: WireFormat,
        max_tokens: int | None,
    ) -> CallRequest:
        return CallRequest(
            provider=provider,
            model=model,
            attribution=attribution,
            max_tokens=max_tokens or None,
            priority=self.priority,
            overrides=grants(self.overrides, attribution.api_key),
            # the count, its hard bound, and the prefix marked for the cache (none: input at the plain price)
            **input_fields(kwargs, fmt, writes_cache=writes_cache(fmt, kwargs)),
        )

    def shape(self, plan: Plan, admission: Admission) -> Plan | Short:
        """Apply the governor's decision to the request; `Short` when no model is to be called."""
        plan.admission = admission
        decision = admission.decision
        kwargs = plan.kwargs
        session = plan.session
        action = decision.action
        if action is Action.BLOCK:
            message, retry_at = decision.message or "blocked by budget", decision.retry_at
            state = session.state() if session is not None else None
            error = BudgetBlocked(message, retry_at=retry_at, reasons=decision.reasons, state=state)
            return Short(message, decision.requested_model, error, admission, CallStatus.BLOCKED, retry_at=retry_at)
        if action is Action.PARTIAL or (admission.reservation is None and not action.calls_model):
            if session is not None:
                session.stop("partial", decision.message or "budget exhausted")
            short = self._exhausted(
                decision.message or "budget exhausted", decision.requested_model, session, retry_at=decision.retry_at
            )
            short.admission, short.status = admission, CallStatus.PARTIAL
            return short
        if action in (Action.WARN, Action.NOTIFY) or Action.WARN in decision.extra_actions:
            log.warning("fiscus: %s", decision.message or "budget threshold reached")
            if self.on_warn is not None:
                self.on_warn(decision, plan.request.attribution if plan.request else self.attribution)
        kwargs = dict(kwargs)
        if decision.model and decision.model != kwargs.get("model"):
            kwargs["model"] = decision.model
        target = decision.compress_to_tokens
        if target and (action is Action.COMPRESS or Action.COMPRESS in decision.extra_actions):
            kwargs, cut = compress(kwargs, plan.fmt, target)
            if cut:
                log.info("fiscus: context compressed by %d tokens", cut)
                admission.shaped = Shaped(context_tokens=cut)
        max_tokens = decision.max_tokens
        if session is not None and session.ceiling_usd is not None:
            sheet = self._sheet(plan.request.provider, kwargs["model"]) if plan.request else None
            fitted = _fit(sheet, plan.input_tokens, max_tokens, session.remaining() or Decimal(0)) if sheet else None
            reserved = sheet.worst_case(plan.input_tokens, fitted) if sheet and fitted else None
            if fitted is None or reserved is None or not session.reserve(reserved):
                session.stop("ceiling", f"ceiling ${_ceiling(session)} reached")
                short = self._exhausted(
                    f"session ceiling ${_ceiling(session)} reached",
                    decision.requested_model,
                    session,
                    code=SESSION_CEILING,
                )
                short.admission, short.status = admission, CallStatus.PARTIAL
                return short
            plan.reserved, max_tokens = reserved, fitted
        kwargs[plan.max_key] = max_tokens
        plan.kwargs = kwargs
        return plan

    # --- guard outcomes --------------------------------------------------------------------------------------------

    def on_loop(self, found: Detection, owner: Session | None, agent: str | None, *, model: str = "") -> Short | None:
        action = self.loops.action if owner is None else owner.detector.config.action
        if action == "warn" and not self._announce_warning(agent, found.kind):
            return None
        emit(
            LoopDetected(found.kind, owner.id if owner else None, agent, action, found.message, found.evidence),
            self.governor,
        )
        log.warning("fiscus: loop detected (%s): %s", found.kind, found.message)
        if action == "warn":
            return None
        if owner is not None:
            owner.stop("loop", found.message)
        return refusals.loop_stopped(self, found, action, owner, model)

    def _announce_warning(self, agent: str | None, kind: str) -> bool:
        """A loop that only warns is announced once a minute per agent and kind, not on every call it repeats."""
        now = time.monotonic()
        key = (agent, kind)
        if now - self._warned.get(key, -WARN_EVERY_S) < WARN_EVERY_S:
            return False
        if len(self._warned) > 10_000:
            self._warned.clear()
        self._warned[key] = now
        return True

    def _exhausted(
        self,
        message: str,
        model: str,
        session: Session | None,
        *,
        retry_at: datetime | None = None,
        code: str = BUDGET_EXHAUSTED,
    ) -> Short:
        return refusals.exhausted(self, message, model, session, code=code, retry_at=retry_at)

    def _sheet(self, provider: str, model: str) -> PriceSheet:
        key = (provider, model)
        sheet = self._sheets.get(key)
        if sheet is None:
            sheet = self._sheets[key] = self.catalogue.sheet(provider=provider, model=model)
        return sheet


def partial_text(short: Short) -> str:
    return refusals.answer_text(short)


def _fit(sheet: PriceSheet, input_tokens: int, max_tokens: int, room: Decimal) -> int | None:
    """The largest output cap ≤ `max_tokens` whose worst case fits in `room`; None below the minimum."""
    if sheet.worst_case(input_tokens, max_tokens) <= room:
        return max_tokens
    base = sheet.worst_case(input_tokens, 0)
    per_token = (sheet.worst_case(input_tokens, 1_000_000) - base) / 1_000_000
    if base >= room or per_token <= 0:
        return None
    fitted = min(int((room - base) / per_token), max_tokens)
    while fitted >= MIN_OUTPUT_TOKENS and sheet.worst_case(input_tokens, fitted) > room:  # tiers, rounding
        fitted -= 1
    return fitted if fitted >= MIN_OUTPUT_TOKENS else None


def _ceiling(session: Session) -> Decimal | None:
    limits = [n.ceiling_usd for n in session.chain() if n.ceiling_usd is not None]
    return min(limits) if limits else None


_CATALOGUE: PriceCatalogue | None = None


def _shared_catalogue() -> PriceCatalogue:
    global _CATALOGUE
    if _CATALOGUE is None:
        _CATALOGUE = PriceCatalogue()
    return _CATALOGUE
