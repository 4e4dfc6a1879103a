"""`Governor`: the one pipeline both doors use — plan, read counters, decide, reserve; price, settle, record."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Unpack

import orjson

from fiscus.engine.calibration import SCALE_ONE
from fiscus.engine.decision import Action, Decision
from fiscus.engine.engine import Engine
from fiscus.engine.plan import Plan
from fiscus.engine.ports import Amounts, Counter, Refusal, Reservation
from fiscus.engine.request import CallRequest
from fiscus.errors import PricingError, StoreError
from fiscus.events.budget_events import ReservationRaced
from fiscus.events.cost_event import CallStatus, CostEvent, detail_tags, new_event_id
from fiscus.events.otel import CostSpans
from fiscus.events.sink import EventSink
from fiscus.governor.admission import Admission
from fiscus.governor.announce import Announcer
from fiscus.governor.drive import adrive, drive
from fiscus.governor.outcome import Outcome
from fiscus.governor.priced import Sheets, ungoverned_cost
from fiscus.governor.steps import ReadCounters, Record, Reserve, Settle, Steps
from fiscus.governor.store_guard import StoreGuard
from fiscus.governor.task_class import TaskClassRules
from fiscus.money import to_nanos
from fiscus.policy.types import Policy
from fiscus.pricing.catalogue import PriceCatalogue
from fiscus.pricing.cost import Cost
from fiscus.pricing.sheet import PriceSheet
from fiscus.stores.base import BudgetStore
from fiscus.stores.rebuild_marks import ANNOUNCED_TAG, announced_tag
from fiscus.stores.settle_retry import PendingSettle, SettleRetry
from fiscus.usage.model import Usage

if TYPE_CHECKING:
    from fiscus.config import FiscusConfig
    from fiscus.governor.calibration_keeper import CalibrationKeeper
    from fiscus.governor.status import BudgetStatus
    from fiscus.stores.response_cache import ResponseCacheStore

RESERVE_ATTEMPTS = 3  # decide again after a store refusal (another caller took the room), then refuse honestly
_ZERO_USAGE = Usage()
_ZERO_COST = Cost()
_NO_MODEL = (CallStatus.BLOCKED, CallStatus.PARTIAL)


log = logging.getLogger("fiscus.governor")


class Governor:
    def __init__(
        self,
        *,
        policy: Policy,
        store: BudgetStore,
        catalogue: PriceCatalogue,
        ledger: EventSink | None = None,
        clock: Callable[[], float] = time.time,
        on_event: Callable[[object], None] | None = None,
        lease_seconds: float = 120.0,
        draw: Callable[[], float] = random.random,
        priced_as: Mapping[str, str] | None = None,
        settle_journal: str | Path | None = None,
        on_store_loss: str = "rebuild",
    ) -> None:
        self.policy = policy
        self.store = store
        self.catalogue = catalogue
        self.ledger = ledger
        self.lease_seconds = lease_seconds
        self._clock = clock
        self._listeners: list[Callable[[object], None]] = [on_event] if on_event is not None else []
        # Every settled call's CostEvent, after the ledger has it: OpenTelemetry spans by default.
        self._cost_listeners: list[Callable[[CostEvent], None]] = [CostSpans()]
        self._draw = draw
        self._lock = threading.Lock()
        self._tiers: dict[str, str | None] = {}
        self.task_classes = TaskClassRules(policy, self._sheet_now)
        self._sheet = Sheets(catalogue, priced_as or {})  # kept for a reloaded policy's engine
        self.engine = Engine(policy, self._sheet)
        self.announcer = Announcer(store, self.on_event)
        self.guard = StoreGuard(self, on_store_loss)  # a lost or unreachable store, answered per policy
        self._settle_journal = settle_journal
        # Failed settles, landed by a thread; started at once when a journal of an earlier run may hold some.
        self.settle_retry: SettleRetry | None = None
        if settle_journal is not None:
            self.settle_retry = SettleRetry(store, settle_journal)

    @classmethod
    def from_config(cls, config: FiscusConfig, *, on_event: Callable[[object], None] | None = None) -> Governor:
        """The governor a config describes; events also go to the notify channels it configures
        (`fiscus.governor.configured`)."""
        from fiscus.governor.configured import from_config

        return from_config(cls, config, on_event=on_event)

    # -- events -----------------------------------------------------------------------------------------

    notifier: object | None = None
    calibration_keeper: CalibrationKeeper | None = None  # calibration kept in the store's backend (from_config)
    response_cache: ResponseCacheStore | None = None  # wrapped clients' exact response cache, opened on first use

    def add_listener(self, listener: Callable[[object], None]) -> None:
        """Call `listener` with every budget event (and the guard events the doors emit through `on_event`)."""
        self._listeners.append(listener)

    def add_cost_listener(self, listener: Callable[[CostEvent], None]) -> None:
        """Call `listener` with every settled call's `CostEvent` (after the ledger has it; a failure is logged)."""
        self._cost_listeners.append(listener)

    def _recorded(self, event: CostEvent) -> None:
        for listener in self._cost_listeners:
            try:
                listener(event)
            except Exception:  # telemetry must never fail a call
                log.exception("fiscus cost listener failed")

    def on_event(self, event: object) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a listener's failure must never fail a call
                log.exception("fiscus event listener failed")

    # -- admit ------------------------------------------------------------------------------------------

    def admit(self, request: CallRequest) -> Admission:
        return drive(self.guard.steps(request), self.store)

    async def aadmit(self, request: CallRequest) -> Admission:
        return await self.guard.aadmit(request)

    def admit_steps(self, request: CallRequest) -> Steps[Admission]:
        """Admission as a sans-IO generator (`plain_admit_steps`) behind the store guard: a store that lost its
        state or cannot be reached is answered per `on_store_loss` (`fiscus.governor.store_guard`)."""
        return self.guard.steps(request)

    def plain_admit_steps(self, request: CallRequest) -> Steps[Admission]:
        """Admission as a sans-IO generator: route, plan, reserve (decide again after a store refusal),
        announce; it yields the store operations it needs and is sent their results (`fiscus.governor.drive`)."""
        started = time.perf_counter()
        now = self._clock()
        engine, lease = self.engine, self.lease_seconds
        asked = request
        if self.task_classes.routes:
            request = self.task_classes.route(request)
            if request.countable and request.model != asked.model:  # the door counts for the model it was asked
                request = replace(request, countable=False)
        plan = engine.plan(request, now)
        event_id = new_event_id()
        quiet = engine.quiet_lines(plan)
        if quiet is not None:  # the common case in one atomic reservation: no budget has a word to say
            granted = yield Reserve(event_id, quiet[0], now, lease)
            if isinstance(granted, Reservation):
                decision = engine.quiet_decision(plan, quiet[1], quiet[2])
                return self._admission(plan, decision, granted, event_id, started, asked)
            engine.mark_loud(plan)
        counters: Mapping[str, Counter] = (yield ReadCounters(plan.keys, now)) if plan.keys else {}
        decision = engine.decide(request, plan, counters, draw=self._draw())
        reservation: Reservation | None = None
        for attempt in range(1, RESERVE_ATTEMPTS + 1):
            if decision.count_helps:  # the door counts the input exactly and asks again: nothing held or said
                return self._admission(plan, decision, None, event_id, started, asked)
            if not decision.calls_model:
                break
            result = yield Reserve(event_id, engine.reserve_lines(plan, decision), now, lease)
            if isinstance(result, Reservation):
                reservation = result
                break
            if attempt == RESERVE_ATTEMPTS or result.budget.endswith("#rate"):
                decision = self._refused(plan, decision, result, attempt)
                break
            decision = engine.decide(request, plan, (yield ReadCounters(plan.keys, now)), draw=self._draw())
        announced: tuple[str, ...] = ()
        if decision.hits:
            announced = yield from self.announcer.announce_steps(decision.hits, event_id=event_id, now=now)
        admission = self._admission(plan, decision, reservation, event_id, started, asked)
        admission.announced = announced
        return admission

    def preflight(self, request: CallRequest, *, fresh: bool = False) -> Decision:
        """What `admit` would decide now for `request` — a task of `request.calls` calls — reserving nothing and
        announcing nothing: does the task fit, on which model, and if not, why and when it may (`retry_at`).
        `reasons` lists every applicable budget. `fresh`: as if every window had just reset (nothing spent), to
        tell a task that must wait from one that can never fit. To hold the room, `admit` the same request."""
        now = self._clock()
        asked = request
        if self.task_classes.routes:
            request = self.task_classes.route(request)
        plan = self.engine.plan(request, now)
        counters = self.store.counters(plan.keys, now=now) if plan.keys and not fresh else {}
        decision = self.engine.decide(request, plan, counters, draw=0.0)
        decision = self.task_classes.as_asked(asked, plan.request, decision)
        return replace(decision, reasons=self.engine.reasons(plan, counters))

    def _refused(self, plan: Plan, decision: Decision, refusal: Refusal, attempts: int) -> Decision:
        """The store refused what the decision expected to fit: refuse honestly with that budget's action."""
        instance = refusal.budget.removesuffix("#rate").removesuffix("#hold")
        line = next((ln for ln in plan.lines if ln.instance == instance), None)
        throttled = refusal.budget.endswith("#rate")
        action = Action.BLOCK if throttled or line is None else line.budget.exhausted
        if throttled:
            retry: float | None = (int(plan.now // 60) + 1) * 60.0
        else:
            retry = line.window.resets_at if line is not None else None
            self._emit(ReservationRaced(budget=instance, attempts=attempts))
        name = line.budget.name if line is not None else instance
        why = "throttled to its per-minute rate" if throttled else "has no room left (taken by concurrent calls)"
        return replace(
            decision,
            action=action,
            model=decision.requested_model,
            max_tokens=0,
            downgraded=False,
            degraded=False,
            compress_to_tokens=None,
            extra_actions=(),
            reserve=None,
            retry_at=datetime.fromtimestamp(retry, UTC) if retry is not None else None,
            message=f"budget {name} {why}: {action}",
            exhausted_budget=name,
        )

    def _admission(
        self,
        plan: Plan,
        decision: Decision,
        reservation: Reservation | None,
        event_id: str,
        started: float,
        asked: CallRequest,
    ) -> Admission:
        model = decision.model
        if decision.calls_model and self.task_classes.routes:
            self.task_classes.ran(plan.request, model)
        decision = self.task_classes.as_asked(asked, plan.request, decision)
        if asked.passed and decision.calls_model:  # past an open breaker or a loop stop: the ledger names who
            ids = (*decision.override_ids, *(override_id for _, override_id in asked.passed))
            decision = replace(decision, override_ids=tuple(dict.fromkeys(ids)))
        return Admission(
            asked,
            decision,
            reservation,
            event_id,
            datetime.fromtimestamp(plan.now, UTC),
            started,
            self._tiers[model] if model in self._tiers else self._tier(model),
            None,
            plan.sheet if model == plan.request.model else None,
            cost_scale=plan.cost_scale,
        )

    # -- settle -----------------------------------------------------------------------------------------

    def settle(self, admission: Admission, usage: Usage | None, **outcome: Unpack[Outcome]) -> CostEvent:
        """Record the call's `CostEvent` (once per admission) and settle its reservation; see `settle_steps`."""
        return drive(self.settle_steps(admission, usage, **outcome), self.store)

    async def asettle(self, admission: Admission, usage: Usage | None, **outcome: Unpack[Outcome]) -> CostEvent:
        return await adrive(self.settle_steps(admission, usage, **outcome), self.store)

    def settle_steps(
        self,
        admission: Admission,
        usage: Usage | None,
        *,
        status: CallStatus = CallStatus.OK,
        served_model: str | None = None,
        latency_ms: int | None = None,
        error: str | None = None,
        streamed: bool = False,
        outcome: str | None = None,
        served_provider: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Steps[CostEvent]:
        claimed = self._claim(
            admission, usage, status, served_model, latency_ms, error, streamed, outcome, served_provider, tags
        )
        if claimed is None:
            return admission.event  # type: ignore[return-value]
        event, actual = claimed
        reservation = admission.reservation
        if not self.durable_settle:
            # The ledger first: if the store then fails, the money spent is still on record.
            if self.ledger is not None:
                self.ledger.submit(event)
            if reservation is not None:
                try:
                    yield Settle(reservation, actual, self._clock())
                except StoreError as exc:
                    self._retry_settle(PendingSettle(reservation, actual, self._clock()), exc)
            self._recorded(event)
            return event
        # A durable store keeps the record in the same atomic step as the counters: from here the call can
        # never be lost, nor counted twice (the writer moves records to the ledger, which skips known ids).
        record = orjson.dumps(event.to_dict())
        try:
            if reservation is not None:
                yield Settle(reservation, actual, self._clock(), record)
            else:
                yield Record(event.id, record)
        except StoreError as exc:
            if self.ledger is not None:
                self.ledger.submit(event)
            if reservation is not None:
                self._retry_settle(PendingSettle(reservation, actual, self._clock(), record), exc)
        else:
            if self.ledger is not None:
                self.ledger.kick()  # type: ignore[attr-defined]
        self._recorded(event)
        return event

    @property
    def durable_settle(self) -> bool:
        """Calls are recorded through the store's outbox (durable, drained by the ledger writer): a settle that
        returned survives this process being killed."""
        ledger = self.ledger
        return self.store.durable and ledger is not None and getattr(ledger, "outbox", None) is self.store

    def _retry_settle(self, pending: PendingSettle, exc: StoreError) -> None:
        """The store failed the settle after the call was served: keep it and land it later, never drop it."""
        log.warning("fiscus: settle of %s failed (%s); kept for retry", pending.reservation.id, exc)
        if self.settle_retry is None:
            self.settle_retry = SettleRetry(self.store, self._settle_journal)
        self.settle_retry.add(pending)

    def _claim(
        self,
        admission: Admission,
        usage: Usage | None,
        status: CallStatus,
        served_model: str | None,
        latency_ms: int | None,
        error: str | None,
        streamed: bool,
        outcome: str | None,
        served_provider: str | None = None,
        extra_tags: dict[str, str] | None = None,
    ) -> tuple[CostEvent, Amounts] | None:
        """Build the event and the amounts to settle, once per admission; None when it was settled before. A call
        a fallback served elsewhere (`served_provider`) is priced, and recorded, as that provider's."""
        request, decision = admission.request, admission.decision
        served = served_model or decision.model
        provider = served_provider or request.provider
        tags: dict[str, str] = dict(extra_tags) if extra_tags else {}
        ungoverned_usd, saved = None, None
        if status in _NO_MODEL or usage is None:
            usage, cost = _ZERO_USAGE, _ZERO_COST  # refused, or failed and not billed by the provider
        else:
            try:
                sheet = admission.sheet if served == decision.model and provider == request.provider else None
                if sheet is None:
                    at = admission.timestamp.timestamp()
                    sheet = self.engine.sheet(provider, served, request.batch, at)
                cost = sheet.cost(usage)
                if usage.detail is not None:
                    tags.update(detail_tags(usage, cost))
                if decision.degraded:  # not equal work: no ungoverned figure, never a saving
                    tags["degraded"] = "budget"
                else:
                    asked = (admission, usage, cost, sheet, served, provider)
                    ungoverned_usd, saved = ungoverned_cost(self.engine, *asked)
            except PricingError as exc:
                # Not priceable: keep the worst case reserved as spent (budgets never undercount) and say so.
                cost, tags["unpriced"] = _ZERO_COST, str(exc)
        if decision.exhausted_budget:
            tags["budget"] = decision.exhausted_budget
        if decision.override_ids:  # an override let this call past a refusal: the ledger says which
            tags["override"] = ",".join(decision.override_ids)
        if admission.announced:  # a store rebuilt from the ledger gets these marks back: announced once
            tags[ANNOUNCED_TAG] = announced_tag(admission.announced)
        attribution = request.attribution.refine(outcome=outcome) if outcome else request.attribution
        event = CostEvent(
            provider,
            request.model,
            served if status not in _NO_MODEL else decision.requested_model,
            usage,
            cost,
            attribution,
            status,
            admission.event_id,
            admission.timestamp,
            self._tiers[served] if served in self._tiers else self._tier(served),
            latency_ms if latency_ms is not None else int((time.perf_counter() - admission.started) * 1000),
            request.batch,
            streamed,
            error,
            decision.action.value,
            tags,
            ungoverned_usd,
            saved,
            policy_version=self.policy.version,
        )
        if "unpriced" in tags and admission.reservation is not None:
            actual = decision.hold or decision.reserve or Amounts()
        else:
            tokens = (  # Usage.total_tokens, without its three property calls
                usage.input_tokens
                + usage.cache_read_tokens
                + usage.cache_write_5m_tokens
                + usage.cache_write_1h_tokens
                + usage.output_tokens
            )
            actual = Amounts(to_nanos(cost.total), tokens, request.calls if admission.reservation else 0)
        with self._lock:
            if admission.event is not None:
                return None
            admission.event = event
        if status is CallStatus.OK and not usage.estimated and usage is not _ZERO_USAGE:
            self._calibrate(admission, usage, served, provider, cost)
        return event, actual

    def _calibrate(self, admission: Admission, usage: Usage, served: str, provider: str, cost: Cost) -> None:
        """Teach the estimator what the provider billed for what was counted: only for a call sent as counted
        (same provider and model, not compressed, not summarised) and billed from the provider's own usage."""
        request, decision = admission.request, admission.decision
        if served != request.model or provider != request.provider or decision.compress_to_tokens is not None:
            return
        if (admission.shaped is not None and admission.shaped.context_tokens) or request.calls != 1:
            return
        billed, agent, calibration = usage.total_input_tokens, request.attribution.agent, self.engine.calibration
        self.engine.prefixes.billed(provider, served, request.input_chain, billed)
        if request.input_exact:  # the provider's count, not the estimator's: nothing to learn of the estimator
            return
        calibration.observe(provider, served, agent, request.input_tokens, billed)
        if self.calibration_keeper is not None:
            self.calibration_keeper.observed()
        reserve = decision.reserve
        if reserve is not None and reserve.nanos > 0 and admission.reservation is not None:
            estimated = reserve.nanos * SCALE_ONE // max(1, admission.cost_scale)  # before the cost ratio scaled it
            calibration.observe_cost(provider, served, agent, estimated, to_nanos(cost.total))

    # -- leases, status, lifecycle ----------------------------------------------------------------------

    def renew(self, admission: Admission) -> bool:
        if admission.reservation is None or admission.event is not None:
            return False
        return self.store.renew(admission.reservation, now=self._clock(), lease_seconds=self.lease_seconds)

    def now(self) -> float:
        """The governor's clock (epoch seconds): what windows and leases are measured by."""
        return self._clock()

    def status(self) -> list[BudgetStatus]:
        from fiscus.governor.status import budget_statuses

        return budget_statuses(self.engine, self.store, now=self._clock())

    def close(self) -> None:
        if self.calibration_keeper is not None:
            self.calibration_keeper.close()
            self.calibration_keeper = None
        if self.response_cache is not None:
            self.response_cache.close()
        if self.notifier is not None:
            self.notifier.close()  # type: ignore[attr-defined]
        if self.settle_retry is not None:
            self.settle_retry.wait(timeout=2.0)  # what does not land by then stays in the journal
            self.settle_retry.close()
        if self.ledger is not None:
            self.ledger.flush()
            self.ledger.close()
        self.store.close()

    def _sheet_now(self, provider: str, model: str) -> PriceSheet:
        return self.engine.sheet(provider, model, False, self._clock())

    def _tier(self, model: str) -> str | None:
        tier = self._tiers.get(model, "")
        if tier == "":
            found = self.policy.ladders.tier_of(model)
            tier = self._tiers[model] = found.name if found else None
        return tier

    def _emit(self, event: object) -> None:
        self.on_event(event)

    # -- calls answered without a provider ------------------------------------------------------------------

    def record_cache_hit(self, request: CallRequest, usage: Usage) -> CostEvent:
        """One ledger event for a call the exact response cache answered (see `cache_hit_steps`)."""
        return drive(self.cache_hit_steps(request, usage), self.store)

    async def arecord_cache_hit(self, request: CallRequest, usage: Usage) -> CostEvent:
        return await adrive(self.cache_hit_steps(request, usage), self.store)

    def cache_hit_steps(self, request: CallRequest, usage: Usage) -> Steps[CostEvent]:
        from fiscus.governor.cache_hit import cache_hit_steps

        return cache_hit_steps(self, request, usage)

    # -- calls a door refused before admission ------------------------------------------------------------

    def record(self, request: CallRequest, *, status: CallStatus = CallStatus.PARTIAL, message: str = "") -> CostEvent:
        """One zero-cost ledger event for a call a door stopped before asking for admission (an SDK session
        ceiling, a stopped run): every call stays one ledger event. No budget counter is read or touched."""
        action = Action.BLOCK if status is CallStatus.BLOCKED else Action.PARTIAL
        decision = Decision(action, request.model, request.model, 0, message=message)
        now = datetime.fromtimestamp(self._clock(), UTC)
        admission = Admission(
            request=request,
            decision=decision,
            reservation=None,
            event_id=new_event_id(),
            timestamp=now,
            started=time.perf_counter(),
            model_tier=self._tier(request.model),
        )
        return self.settle(admission, None, status=status)
