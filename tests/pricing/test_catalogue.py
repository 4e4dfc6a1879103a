from datetime import UTC, datetime
from decimal import Decimal

import pytest
from genai_prices import Usage as GpUsage
from genai_prices import calc_price

from fiscus.errors import UnknownModelError
from fiscus.pricing import Cost, PriceCatalogue, PricingConfig
from fiscus.usage import Usage

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture
def catalogue() -> PriceCatalogue:
    return PriceCatalogue()


def test_seed_system_prompt_plain_vs_cached(catalogue: PriceCatalogue) -> None:
    # 50,000-token system prompt sent 1,000 times a day to Claude Sonnet 4.6.
    plain = catalogue.price(Usage(input_tokens=50_000), provider="anthropic", model="claude-sonnet-4-6", at=NOW)
    cached = catalogue.price(Usage(cache_read_tokens=50_000), provider="anthropic", model="claude-sonnet-4-6", at=NOW)
    assert (plain * 1000).total == Decimal("150")
    assert (cached * 1000).total == Decimal("15")


def test_every_part_priced_at_its_own_rate(catalogue: PriceCatalogue) -> None:
    usage = Usage(
        input_tokens=1_000_000,
        cache_read_tokens=1_000_000,
        cache_write_5m_tokens=1_000_000,
        cache_write_1h_tokens=1_000_000,
        output_tokens=1_000_000,
        reasoning_tokens=400_000,
    )
    cost = catalogue.price(usage, provider="anthropic", model="claude-haiku-4-5", at=NOW)
    assert cost == Cost(
        input=Decimal(1),
        cache_read=Decimal("0.1"),
        cache_write_5m=Decimal("1.25"),
        cache_write_1h=Decimal(2),
        output=Decimal(5),
    )
    assert cost.total == Decimal("9.35")


def test_matches_genai_prices_totals(catalogue: PriceCatalogue) -> None:
    cases = [
        ("openai", "gpt-4o", Usage(input_tokens=1200, cache_read_tokens=1024, output_tokens=333)),
        ("openai", "gpt-5", Usage(input_tokens=5000, cache_read_tokens=2048, output_tokens=900, reasoning_tokens=600)),
        ("google", "gemini-2.5-flash", Usage(input_tokens=7000, cache_read_tokens=3000, output_tokens=100)),
        ("anthropic", "claude-sonnet-4-5", Usage(input_tokens=250_000, cache_read_tokens=10, output_tokens=5)),
        ("anthropic", "claude-opus-4-6", Usage(input_tokens=10, cache_write_5m_tokens=7000, output_tokens=5)),
    ]
    for provider, model, usage in cases:
        ours = catalogue.price(usage, provider=provider, model=model, at=NOW).total
        theirs = calc_price(
            GpUsage(
                input_tokens=usage.total_input_tokens,
                cache_read_tokens=usage.cache_read_tokens,
                cache_write_tokens=usage.cache_write_tokens,
                output_tokens=usage.output_tokens,
            ),
            model,
            provider_id=provider,
            genai_request_timestamp=NOW,
        ).total_price
        assert ours == theirs, (provider, model)


def test_long_context_tier_applies_to_all_tokens_above_threshold(catalogue: PriceCatalogue) -> None:
    below = catalogue.price(
        Usage(input_tokens=200_000, output_tokens=1000), provider="anthropic", model="claude-sonnet-4-5", at=NOW
    )
    above = catalogue.price(
        Usage(input_tokens=200_001, output_tokens=1000), provider="anthropic", model="claude-sonnet-4-5", at=NOW
    )
    assert below.input == Decimal("0.6") and below.output == Decimal("0.015")
    assert above.input == Decimal("1.200006") and above.output == Decimal("0.0225")
    # Cache tokens count toward the threshold.
    mixed = catalogue.price(
        Usage(input_tokens=100_000, cache_read_tokens=150_000), provider="anthropic", model="claude-sonnet-4-5", at=NOW
    )
    assert mixed.input == Decimal("0.6") and mixed.cache_read == Decimal("0.09")


def test_price_in_force_at_the_call_timestamp(catalogue: PriceCatalogue) -> None:
    usage = Usage(input_tokens=300_000)
    before = catalogue.price(
        usage, provider="anthropic", model="claude-sonnet-4-6", at=datetime(2026, 2, 1, tzinfo=UTC)
    )
    after = catalogue.price(usage, provider="anthropic", model="claude-sonnet-4-6", at=datetime(2026, 4, 1, tzinfo=UTC))
    assert before.input == Decimal("1.8")  # long-context tier at $6/MTok then
    assert after.input == Decimal("0.9")  # flat $3/MTok from 2026-03-13


def test_batch_discount_stacks_with_cache_where_provider_stacks(catalogue: PriceCatalogue) -> None:
    usage = Usage(input_tokens=1_000_000, cache_read_tokens=1_000_000, output_tokens=1_000_000)
    batch = catalogue.price(usage, provider="anthropic", model="claude-sonnet-4-6", at=NOW, batch=True)
    assert batch == Cost(input=Decimal("1.5"), cache_read=Decimal("0.15"), output=Decimal("7.5"))
    # OpenAI's gpt-4o batch price does not discount cached input further.
    oa = catalogue.price(usage, provider="openai", model="gpt-4o", at=NOW, batch=True)
    assert oa == Cost(input=Decimal("1.25"), cache_read=Decimal("1.25"), output=Decimal(5))


def test_batch_without_catalogue_batch_price_uses_configured_factor() -> None:
    catalogue = PriceCatalogue(PricingConfig(batch_factor=Decimal("0.5")))
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    early = datetime(2026, 1, 5, tzinfo=UTC)  # before the catalogue's batch prices start
    batch = catalogue.sheet(provider="anthropic", model="claude-haiku-4-5", at=early, batch=True)
    assert batch.cost(usage).total == Decimal(3)
    assert any("batch" in note for note in batch.notes)


def test_unknown_model_is_an_error_not_zero(catalogue: PriceCatalogue) -> None:
    with pytest.raises(UnknownModelError, match="unknown model 'no-such-model'"):
        catalogue.price(Usage(input_tokens=10), provider="anthropic", model="no-such-model")


def test_fallback_price_is_flagged() -> None:
    config = PricingConfig.model_validate({"fallback": {"input_mtok": "10", "output_mtok": "30"}})
    cost = PriceCatalogue(config).price(Usage(input_tokens=1000, output_tokens=1000), provider="x", model="mystery")
    assert cost.total == Decimal("0.04")
    assert cost.fallback_price is True


def test_overrides_custom_gpu_finetune_discount_alias() -> None:
    config = PricingConfig.model_validate(
        {
            "models": [
                {"provider": "vllm", "model": "llama-3.1-70b", "input_mtok": "0.2", "output_mtok": "0.6"},
                {
                    "provider": "ollama",
                    "model": "qwen*",
                    "gpu_hour": {"usd_per_hour": "3.6", "output_tokens_per_second": 1000},
                },
                {"provider": "openai", "model": "ft:gpt-4o-mini:acme::*", "base": "gpt-4o-mini", "multiplier": 2},
            ],
            "discounts": [{"provider": "anthropic", "percent": 20}],
            "aliases": {"prod-gpt4o-eastus": {"provider": "openai", "model": "gpt-4o"}},
        }
    )
    catalogue = PriceCatalogue(config)
    one_m = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert catalogue.price(one_m, provider="vllm", model="llama-3.1-70b").total == Decimal("0.8")
    # $3.60/h at 1,000 tokens/s = 3.6M tokens an hour → $1/MTok both ways.
    assert catalogue.price(one_m, provider="ollama", model="qwen2.5-32b").total == Decimal(2)
    ft = catalogue.price(one_m, provider="openai", model="ft:gpt-4o-mini:acme::x1", at=NOW)
    base = catalogue.price(one_m, provider="openai", model="gpt-4o-mini", at=NOW)
    assert ft.total == base.total * 2
    discounted = catalogue.price(one_m, provider="anthropic", model="claude-haiku-4-5", at=NOW)
    assert discounted.total == Decimal("4.8")
    aliased = catalogue.price(one_m, provider="azure", model="prod-gpt4o-eastus", at=NOW)
    assert aliased.total == Decimal("12.5")


def test_override_valid_from_picks_the_price_in_force() -> None:
    config = PricingConfig.model_validate(
        {
            "models": [
                {"provider": "vllm", "model": "m", "input_mtok": "1", "output_mtok": "1"},
                {"provider": "vllm", "model": "m", "input_mtok": "2", "output_mtok": "2", "valid_from": "2026-06-01"},
            ]
        }
    )
    catalogue = PriceCatalogue(config)
    usage = Usage(input_tokens=1_000_000)
    assert catalogue.price(usage, provider="vllm", model="m", at=datetime(2026, 5, 1, tzinfo=UTC)).total == 1
    assert catalogue.price(usage, provider="vllm", model="m", at=datetime(2026, 7, 1, tzinfo=UTC)).total == 2


def test_worst_case_bounds_every_actual_cost(catalogue: PriceCatalogue) -> None:
    sheet = catalogue.sheet(provider="anthropic", model="claude-sonnet-4-5", at=NOW)
    bound = sheet.worst_case(300_000, 4096)
    for usage in (
        Usage(input_tokens=300_000, output_tokens=4096),
        Usage(cache_write_1h_tokens=300_000, output_tokens=4096),
        Usage(input_tokens=100_000, cache_write_5m_tokens=200_000, output_tokens=4096),
    ):
        assert sheet.cost(usage).total <= bound


def test_bad_override_is_rejected() -> None:
    with pytest.raises(ValueError, match="exactly one of"):
        PricingConfig.model_validate({"models": [{"model": "x"}]})
