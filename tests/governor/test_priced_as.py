"""A configured provider is priced as its kind ("openai-eu" as OpenAI) unless prices were written for its own name;
a call a fallback served elsewhere is priced, and recorded, as the provider that served it."""

from __future__ import annotations

from decimal import Decimal

from fiscus.attribution import Attribution
from fiscus.config import FiscusConfig
from fiscus.governor import CallRequest, Governor
from fiscus.governor.priced import priced_as
from fiscus.money import to_nanos
from fiscus.policy import parse_policy
from fiscus.pricing import PriceCatalogue
from fiscus.pricing.overrides import PricingConfig
from fiscus.stores import open_store
from fiscus.usage import Usage

from ._support import Clock, ListLedger

USAGE = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
PRICED_AS = {"openai-eu": "openai", "claude-backup": "anthropic", "local": "local"}


def make(pricing: PricingConfig | None = None) -> tuple[Governor, ListLedger]:
    policy = parse_policy({"budgets": [{"name": "team", "scope": {"team": "*"}, "limit": {"usd": 1000}}]})
    ledger = ListLedger()
    governor = Governor(
        policy=policy,
        store=open_store("memory://"),
        catalogue=PriceCatalogue(pricing),
        ledger=ledger,
        clock=Clock(),
        priced_as=PRICED_AS,
    )
    return governor, ledger


def catalogue_total(provider: str, model: str) -> Decimal:
    return PriceCatalogue().sheet(provider=provider, model=model).cost(USAGE).total


def test_a_configured_name_is_priced_as_its_kind() -> None:
    governor, _ = make()
    admission = governor.admit(CallRequest("openai-eu", "gpt-4o-mini", Attribution(team="t"), 1_000_000, 1_000_000))
    event = governor.settle(admission, USAGE)
    assert event.cost.total == catalogue_total("openai", "gpt-4o-mini") > 0
    assert event.provider == "openai-eu"
    assert "unpriced" not in event.tags


def test_prices_written_for_the_name_win_over_its_kind() -> None:
    pricing = PricingConfig.model_validate(
        {"models": [{"provider": "openai-eu", "model": "gpt-4o-mini", "input_mtok": "1", "output_mtok": "2"}]}
    )
    governor, _ = make(pricing)
    admission = governor.admit(CallRequest("openai-eu", "gpt-4o-mini", Attribution(team="t"), 1_000_000, 1_000_000))
    assert governor.settle(admission, USAGE).cost.total == Decimal(3)


def test_a_fallback_is_priced_and_recorded_as_the_provider_that_served_it() -> None:
    governor, ledger = make()
    admission = governor.admit(CallRequest("openai-eu", "gpt-4o-mini", Attribution(team="t"), 1_000_000, 1_000_000))
    event = governor.settle(admission, USAGE, served_model="claude-sonnet-4-5", served_provider="claude-backup")
    assert event.cost.total == catalogue_total("anthropic", "claude-sonnet-4-5")
    assert (event.provider, event.requested_model, event.served_model) == (
        "claude-backup",
        "gpt-4o-mini",
        "claude-sonnet-4-5",
    )
    assert ledger.events == [event]
    spent = governor.status()[0].spent.nanos
    assert spent == to_nanos(event.cost.total)  # the budget counts what the fallback cost


def test_priced_as_maps_each_kind_of_provider() -> None:
    config = FiscusConfig.model_validate(
        {
            "providers": {
                "openai-eu": {"kind": "openai"},
                "claude": {"kind": "anthropic"},
                "gem": {"kind": "gemini"},
                "az": {"kind": "azure-openai", "base_url": "https://x.openai.azure.com"},
                "vllm": {"kind": "openai-compatible", "base_url": "http://127.0.0.1:8000/v1"},
            }
        }
    )
    assert priced_as(config) == {"openai-eu": "openai", "claude": "anthropic", "gem": "google", "az": "azure"}
