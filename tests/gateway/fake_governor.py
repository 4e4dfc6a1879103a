"""A scriptable stand-in for `fiscus.governor.Governor`, for gateway paths a real policy reaches only slowly.

It reserves and settles on a real budget store (one line, one counter key) and prices with the real
catalogue; the decision is scripted by the test (`plan`), so every enforcement path can be driven."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fiscus.attribution import Attribution
from fiscus.engine.decision import Action, Decision
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.money import to_nanos
from fiscus.pricing import PriceCatalogue
from fiscus.pricing.cost import Cost
from fiscus.stores import Amounts, BudgetStore, Limits, Refusal, Reservation, ReserveLine
from fiscus.usage.model import Usage

COUNTER_KEY = "b:gateway-test"


@dataclass(frozen=True, slots=True)
class CallRequest:
    provider: str
    model: str
    attribution: Attribution
    input_tokens: int
    max_tokens: int | None = None
    priority: str = "normal"
    overrides: tuple[tuple[str, str], ...] = ()
    batch: bool = False
    calls: int = 1


@dataclass
class Admission:
    request: CallRequest
    decision: Decision
    reservation: Reservation | None
    event_id: str
    timestamp: datetime
    started: float


@dataclass
class BudgetStatus:
    budget: str
    utilisation: float


@dataclass
class Plan:
    action: Action = Action.ALLOW
    model: str | None = None
    max_tokens: int = 4096
    compress_to_tokens: int | None = None
    message: str = "team budget at 100%"
    retry_in_s: float = 3600


class Governor:
    def __init__(
        self,
        *,
        store: BudgetStore,
        catalogue: PriceCatalogue | None = None,
        clock: Callable[[], float] = time.time,
        lease_seconds: float = 120.0,
        **_: object,
    ) -> None:
        self.store = store
        self.durable_settle = False  # the answer goes out before the settle
        self.catalogue = catalogue or PriceCatalogue()
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.plan = Plan()
        self.events: list[CostEvent] = []
        self._recorded = threading.Condition()
        self.admitted = 0
        self.requests: list[CallRequest] = []
        self._settled: dict[str, CostEvent] = {}

    def admit(self, request: CallRequest) -> Admission:
        self.admitted += 1
        self.requests.append(request)
        plan = self.plan
        cap = min(request.max_tokens or plan.max_tokens, plan.max_tokens)
        decision = Decision(
            action=plan.action,
            model=plan.model or request.model,
            requested_model=request.model,
            max_tokens=cap,
            compress_to_tokens=plan.compress_to_tokens,
            downgraded=plan.model is not None,
            retry_at=datetime.now(UTC) + timedelta(seconds=plan.retry_in_s) if plan.action is Action.BLOCK else None,
            message=plan.message,
        )
        reservation = None
        if decision.calls_model:
            line = ReserveLine("test", (COUNTER_KEY,), Limits(), Amounts(nanos=1_000_000, tokens=cap, requests=1))
            got = self.store.reserve(uuid.uuid4().hex, (line,), now=self.clock(), lease_seconds=self.lease_seconds)
            assert not isinstance(got, Refusal)
            reservation = got
        return Admission(request, decision, reservation, str(uuid.uuid4()), datetime.now(UTC), time.perf_counter())

    async def aadmit(self, request: CallRequest) -> Admission:
        return self.admit(request)

    def settle(
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
    ) -> CostEvent:
        if admission.event_id in self._settled:
            return self._settled[admission.event_id]
        usage = usage or Usage()
        served = served_model or admission.decision.model
        request = admission.request
        provider = served_provider or request.provider
        cost = Cost() if usage.total_tokens == 0 else self.catalogue.price(usage, provider=provider, model=served)
        if admission.reservation is not None:
            actual = Amounts(nanos=to_nanos(cost.total), tokens=usage.total_tokens, requests=1)
            self.store.settle(admission.reservation, actual, now=self.clock())
        event = CostEvent(
            provider=provider,
            requested_model=request.model,
            served_model=served,
            usage=usage,
            cost=cost,
            attribution=request.attribution,
            status=status,
            id=admission.event_id,
            latency_ms=latency_ms,
            streamed=streamed,
            error=error,
            decision=str(admission.decision.action),
        )
        self._settled[admission.event_id] = event
        with self._recorded:
            self.events.append(event)
            self._recorded.notify_all()
        return event

    async def asettle(self, admission: Admission, usage: Usage | None, **kwargs: object) -> CostEvent:
        return self.settle(admission, usage, **kwargs)  # type: ignore[arg-type]

    def renew(self, admission: Admission) -> bool:
        if admission.reservation is None:
            return False
        return self.store.renew(admission.reservation, now=self.clock(), lease_seconds=self.lease_seconds)

    def status(self) -> list[BudgetStatus]:
        return [BudgetStatus("test", 0.5)]

    def reserved(self) -> Amounts:
        return self.store.counters((COUNTER_KEY,), now=self.clock())[COUNTER_KEY].reserved

    def close(self) -> None:
        self.store.close()

    def last_event(self, timeout: float = 5.0) -> CostEvent:
        """The newest event once every admitted call was recorded: a stream is settled just after its last
        byte, so a client can finish reading before the gateway has recorded the call."""
        with self._recorded:
            if not self._recorded.wait_for(lambda: len(self.events) >= self.admitted, timeout):
                raise AssertionError(f"{self.admitted} calls admitted, {len(self.events)} recorded")
            return self.events[-1]
