"""A call a budget degraded (one tier down, or its context compressed, as the budget neared its end) is not
equal work: it is tagged `degraded=budget` and records no ungoverned cost and no saving, while a task-class
route on the same governor still records its saving."""

from __future__ import annotations

from decimal import Decimal

from fiscus.attribution import Attribution
from fiscus.governor import CallRequest
from fiscus.usage import Usage

from ._support import governor

TEAM = {"name": "team", "scope": {"team": "growth"}, "window": "day", "limit": {"usd": 1}}


def call(model: str = "big", task_class: str | None = None, **kw: object) -> CallRequest:
    who = Attribution(team="growth", agent="a1", task_class=task_class)
    return CallRequest(provider="local", model=model, attribution=who, input_tokens=10_000, **kw)  # type: ignore[arg-type]


def test_a_degraded_call_records_no_saving_and_says_why() -> None:
    gov, _, ledger, _ = governor({"budgets": [TEAM]})
    calm = gov.admit(call(max_tokens=100))
    assert not calm.decision.degraded
    calm_event = gov.settle(calm, Usage(input_tokens=10_000, output_tokens=100))
    assert calm_event.ungoverned_usd == calm_event.cost.total and "degraded" not in calm_event.tags
    while gov.status()[0].utilisation < Decimal("0.9"):  # downgrade + compress on the default thresholds
        gov.settle(gov.admit(call(max_tokens=100)), Usage(input_tokens=10_000, output_tokens=100))
    admission = gov.admit(call(max_tokens=100))
    assert admission.decision.degraded and admission.decision.downgraded
    event = gov.settle(admission, Usage(input_tokens=5000, output_tokens=10))
    assert event.served_model == "small" and event.cost.total > 0
    assert event.tags["degraded"] == "budget"
    assert event.ungoverned_usd is None and event.saved is None
    assert ledger.events[-1] is event


def test_a_route_is_not_a_degradation() -> None:
    gov, _, _, _ = governor({"budgets": [TEAM], "routes": {"cheap": ["small"]}, "context": {"cheap": 2000}})
    admission = gov.admit(call(task_class="cheap", max_tokens=100))
    decision = admission.decision
    assert decision.model == "small" and decision.compress_to_tokens == 2000 and not decision.degraded
    event = gov.settle(admission, Usage(input_tokens=2000, output_tokens=10))
    assert "degraded" not in event.tags and event.saved is not None and event.saved.route > 0
