from __future__ import annotations

import pytest

from fiscus.policy import Ladders


@pytest.mark.parametrize(
    ("model", "down"),
    [
        ("claude-opus-4-1", "claude-sonnet-4-5"),
        ("claude-opus-4-1-20250805", "claude-sonnet-4-5"),
        ("claude-sonnet-4-5-20250929", "claude-haiku-4-5"),
        ("claude-haiku-4-5", None),
        ("gpt-5", "gpt-5-mini"),
        ("gpt-5-2025-08-07", "gpt-5-mini"),
        ("gpt-5-mini", "gpt-5-nano"),
        ("gpt-5-nano", None),
        ("gpt-4o", "gpt-4o-mini"),
        ("gpt-4o-mini", None),
        ("gemini-2.5-pro", "gemini-2.5-flash"),
        ("gemini-2.5-flash", "gemini-2.5-flash-lite"),
        ("gemini-2.5-flash-lite", None),
        ("llama-3-70b", None),
    ],
)
def test_one_tier_down_never_two(model: str, down: str | None) -> None:
    assert Ladders.defaults().one_down(model) == down


def test_policy_ladders_replace_a_family() -> None:
    ladders = Ladders.defaults().merged({"gpt-5": (("gpt-5",), ("gpt-5-nano",))})
    assert ladders.one_down("gpt-5") == "gpt-5-nano"
    assert ladders.one_down("gpt-4o") == "gpt-4o-mini"
