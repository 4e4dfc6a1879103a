"""Model names as providers send them find their catalogue entry; names the catalogue prices apart stay apart."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fiscus.pricing import PriceCatalogue
from fiscus.pricing.model_names import catalogue_provider, lookup_names


@pytest.mark.parametrize(
    ("provider", "model", "catalogue_model"),
    [
        ("gemini", "models/gemini-2.5-flash", "gemini-2.5-flash"),
        ("vertex", "publishers/google/models/gemini-2.5-flash", "gemini-2.5-flash"),
        ("vertex", "claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
        ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("openai", "gpt-4o-2024-08-06", "gpt-4o"),
        ("azure-openai", "gpt-4o-2024-08-06", "gpt-4o"),
        ("mistral", "mistral-small-2503", "mistral-small-latest"),
        ("mistral", "mistral-large-latest", "mistral-large"),
        ("xai", "grok-4", "grok-4-0709"),
        ("bedrock", "amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0"),
        ("bedrock", "us.amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0"),
        ("groq", "llama-3.3-70b-versatile", "llama-3.3-70b-versatile"),
        ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        ("deepseek", "deepseek-reasoner", "deepseek-reasoner"),
        ("openrouter", "anthropic/claude-sonnet-4.5", "anthropic/claude-sonnet-4.5"),
    ],
)
def test_provider_names_find_their_catalogue_model(provider: str, model: str, catalogue_model: str) -> None:
    assert PriceCatalogue().sheet(provider=provider, model=model).model == catalogue_model


def test_bedrock_regional_profiles_keep_their_own_price() -> None:
    catalogue = PriceCatalogue()
    regional = catalogue.sheet(provider="bedrock", model="us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    global_ = catalogue.sheet(provider="bedrock", model="global.anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert (regional.input.base, global_.input.base) == (Decimal("3.3"), Decimal("3"))


def test_lookup_names_try_the_name_as_sent_first() -> None:
    assert lookup_names("us.anthropic.claude-3-5-sonnet-20240620-v1:0")[:2] == [
        "us.anthropic.claude-3-5-sonnet-20240620-v1:0",
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
    ]
    assert lookup_names("gpt-4o") == ["gpt-4o"]


def test_catalogue_provider_ids() -> None:
    assert [catalogue_provider(p) for p in ("bedrock", "vertex", "xai", "azure-openai", "Groq")] == [
        "aws",
        "google",
        "x-ai",
        "azure",
        "groq",
    ]
