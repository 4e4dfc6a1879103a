import pytest

from fiscus.shaping.cache_minimums import min_cacheable_tokens, model_key


@pytest.mark.parametrize(
    ("model", "tokens"),
    [
        ("claude-opus-4-6", 4096),
        ("claude-opus-4-5-20251101", 4096),
        ("claude-haiku-4-5-20251001", 4096),
        ("claude-sonnet-4-6", 2048),
        ("claude-3-5-haiku-latest", 2048),
        ("anthropic.claude-3-haiku-20240307-v1:0", 2048),
        ("claude-sonnet-4-5@20250929", 1024),
        ("claude-opus-4-20250514", 1024),
        ("claude-opus-4-1", 1024),
        ("claude-3-7-sonnet-20250219", 1024),
        ("claude-future-9", 4096),  # unknown: the family's largest minimum, never an overstated saving
        ("gpt-5.4", 1024),
        ("gpt-4o-mini", 1024),
        ("gemini-2.5-flash", 2048),
        ("models/gemini-2.5-pro", 2048),
        ("gemini-3-pro-preview", 4096),
        ("gemini-2.0-flash", None),
    ],
)
def test_documented_minimums(model: str, tokens: int | None) -> None:
    assert min_cacheable_tokens(model) == tokens


def test_model_key_strips_dates_and_versions() -> None:
    assert model_key("Claude-Sonnet-4-5-20250929") == "claude-sonnet-4-5"
    assert model_key("eu.anthropic.claude-haiku-4-5-20251001-v1:0") == "claude-haiku-4-5"
