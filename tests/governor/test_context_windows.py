"""Context windows (`context:` in the policy): a call of a task class whose input is longer than its window is
compressed to it whatever its budgets say; a shorter one, another class, or a call no model will answer is left
alone; a budget's own smaller target wins. The doors apply it (gateway and SDK tests below)."""

from __future__ import annotations

import pytest

from fiscus.attribution import Attribution
from fiscus.engine.decision import Action
from fiscus.errors import ConfigError
from fiscus.governor import CallRequest
from fiscus.policy import parse_policy
from fiscus.usage.model import Usage
from tests.governor._support import governor


def call(tokens: int, task_class: str | None = "triage") -> CallRequest:
    attribution = Attribution(team="growth", task_class=task_class)
    return CallRequest("local", "small", attribution, input_tokens=tokens, max_tokens=100)


def test_a_long_context_is_windowed_and_a_short_one_is_not() -> None:
    gov, _, _, _ = governor({"context": {"triage": 4000}, "budgets": []})
    decision = gov.admit(call(10_000)).decision
    assert decision.action is Action.ALLOW and decision.compress_to_tokens == 4000
    assert Action.COMPRESS in decision.extra_actions
    assert gov.admit(call(3000)).decision.compress_to_tokens is None
    assert gov.admit(call(10_000, task_class="research")).decision.compress_to_tokens is None


def test_a_budget_target_below_the_window_wins() -> None:
    thresholds = [{"at": 0.5, "action": "compress", "to_tokens": 1000}, {"at": 1.0, "action": "partial"}]
    budget = {"name": "b", "scope": {"team": "growth"}, "window": "day", "limit": {"usd": 1}, "thresholds": thresholds}
    gov, _, _, _ = governor({"context": {"triage": 4000}, "budgets": [budget]})
    spend = gov.admit(CallRequest("local", "big", Attribution(team="growth"), input_tokens=60_000, max_tokens=10))
    gov.settle(spend, Usage(input_tokens=60_000, output_tokens=10))  # $0.60 of $1: past the compress threshold
    decision = gov.admit(call(10_000)).decision
    assert decision.calls_model and decision.compress_to_tokens == 1000


def test_refusals_stay_refusals() -> None:
    budget = {"name": "b", "scope": {"team": "growth"}, "window": "day", "limit": {"usd": "0.000001"}}
    gov, _, _, _ = governor({"context": {"triage": 4000}, "budgets": [budget]})
    refused = gov.admit(call(10_000)).decision
    assert not refused.calls_model and refused.compress_to_tokens is None


def test_a_window_below_256_tokens_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"context: .*at least 256 tokens"):
        parse_policy({"context": {"triage": 10}})
