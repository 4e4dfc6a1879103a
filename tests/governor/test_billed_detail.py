"""What a call's counts alone do not say reaches its ledger event: iterations billed at their own models, server
tools, the provider's own cost, how an estimate was made."""

from __future__ import annotations

from decimal import Decimal

from fiscus.attribution import Attribution
from fiscus.governor import CallRequest, Governor
from fiscus.money import to_nanos
from fiscus.policy import parse_policy
from fiscus.pricing import PriceCatalogue
from fiscus.stores import open_store
from fiscus.usage import Usage
from fiscus.usage.model import Iteration, UsageDetail

from ._support import Clock, ListLedger


def make() -> tuple[Governor, ListLedger]:
    policy = parse_policy({"budgets": [{"name": "team", "scope": {"team": "*"}, "limit": {"usd": 1000}}]})
    ledger = ListLedger()
    governor = Governor(
        policy=policy, store=open_store("memory://"), catalogue=PriceCatalogue(), ledger=ledger, clock=Clock()
    )
    return governor, ledger


def settle(governor: Governor, provider: str, model: str, usage: Usage):  # type: ignore[no-untyped-def]
    admission = governor.admit(CallRequest(provider, model, Attribution(team="t"), 10_000, 2_000))
    return governor.settle(admission, usage)


def test_an_advisor_iteration_is_billed_at_its_model_and_counted_by_the_budget() -> None:
    governor, ledger = make()
    executor = Usage(input_tokens=1000, output_tokens=100)
    advisor = Usage(input_tokens=1500, output_tokens=500)
    usage = Usage(
        input_tokens=2500,
        output_tokens=600,
        detail=UsageDetail(
            server_tools=(("web_searches", 2),),
            iterations=(Iteration("message", executor), Iteration("advisor_message", advisor, "claude-opus-4-6")),
        ),
    )
    event = settle(governor, "anthropic", "claude-sonnet-4-5", usage)
    # sonnet: 1,000 x 3 + 100 x 15; opus: 1,500 x 5 + 500 x 25; 2 searches at $10 per 1,000
    assert event.cost.total == Decimal("0.0045") + Decimal("0.02") + Decimal("0.02")
    assert event.tags["iterations"] == "message,advisor_message@claude-opus-4-6"
    assert event.tags["server_tools"] == "web_searches=2"
    assert governor.status()[0].spent.nanos == to_nanos(event.cost.total)
    assert ledger.events == [event]


def test_the_providers_own_cost_is_marked() -> None:
    governor, _ = make()
    usage = Usage(input_tokens=194, output_tokens=2, detail=UsageDetail(reported_cost=Decimal("0.00063")))
    event = settle(governor, "openrouter", "openai/gpt-4o", usage)
    assert event.cost.total == Decimal("0.00063") and event.cost.provider_reported
    assert event.tags["cost_source"] == "provider"


def test_an_estimate_says_how_it_was_made() -> None:
    governor, _ = make()
    how = "the stream ended before the provider reported usage: input counted from the request (chars/4)"
    event = settle(governor, "openai", "gpt-4o-mini", Usage(input_tokens=900, output_tokens=40).as_estimated(how))
    assert event.usage.estimated and event.tags["usage_estimate"] == how
