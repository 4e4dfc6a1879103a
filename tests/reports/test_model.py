"""The pre-launch cost model: the seeds' worked figures exactly as they should read, with the catalogue's prices,
and the way runs unfold (context carried, windows, summaries, retries, subagents, caching), seeded."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
import yaml

from fiscus.errors import ConfigError
from fiscus.policy.load import parse_policy
from fiscus.pricing import PriceCatalogue
from fiscus.reports.model import ModelResult, model_workload, parse_spec

CATALOGUE = PriceCatalogue()
AT = "2026-12-01"


def modelled(agents: dict[str, Any], workflows: dict[str, Any], **top: Any) -> ModelResult:
    data = {"prices_at": AT, "samples": 40, "agents": agents, "workflows": workflows, **top}
    return model_workload(parse_spec(data), CATALOGUE)


def one_agent(runs_per_day: float = 1, **agent: Any) -> ModelResult:
    agent.setdefault("model", "claude-sonnet-4-6")
    return modelled({"a": agent}, {"w": {"agent": "a", "runs_per_day": runs_per_day}})


def test_the_catalogue_prices_the_seeds_name() -> None:
    rates = {
        m: CATALOGUE.sheet(provider="anthropic", model=m).input.base
        for m in ("claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-6")
    }
    assert rates == {"claude-haiku-4-5": 1, "claude-sonnet-4-6": 3, "claude-opus-4-6": 5}
    assert CATALOGUE.sheet(provider="anthropic", model="claude-sonnet-4-6").cache_read_rate.base == Decimal("0.3")


def test_a_10_turn_agent_at_20k_per_turn_sends_1_1m_input_tokens() -> None:
    (w,) = one_agent(steps=10, tool_results=20_000).workflows
    assert (w.input_p50, w.input_p95) == (1_100_000, 1_100_000)  # 20k × (1 + 2 + … + 10), not 200k


def test_20_steps_at_10k_is_2_1m_not_1_1m() -> None:
    (w,) = one_agent(steps=20, tool_results=10_000).workflows
    assert w.input_p50 == 2_100_000  # 10k × (1 + … + 20) = 10k × 210


def test_the_70_20_10_mix_is_1_80_per_million_weighted_input_not_1_60() -> None:
    mix = {"claude-haiku-4-5": 70, "claude-sonnet-4-6": 20, "claude-opus-4-6": 10}
    result = modelled({"a": {"routing": mix, "user_input": 1000}}, {"w": {"agent": "a", "runs_per_day": 1}})
    (tc,) = result.task_classes
    assert tc.input_mtok == Decimal("1.8")
    assert tc.input_mtok != Decimal("1.6")
    assert tc.output_mtok == Decimal("9")  # 0.7 × 5 + 0.2 × 15 + 0.1 × 25
    assert set(tc.models) == set(mix)


def test_a_50k_system_prompt_1000_times_a_day_is_150_a_day_plain_and_15_from_cache() -> None:
    sonnet = {"model": "claude-sonnet-4-6", "system_prompt": 50_000}
    plain = modelled({"a": sonnet}, {"w": {"agent": "a", "runs_per_day": 1000}}, days=1)  # a month of one day
    assert plain.month_p50 == Decimal("150") and plain.month_p95 == Decimal("150")
    cached = one_agent(runs_per_day=1000, system_prompt=50_000, cache={"hit_rate": 1})
    (w,) = cached.workflows
    assert w.forecast.cost_p50 * 1000 == Decimal("15")
    computed = one_agent(runs_per_day=1000, system_prompt=50_000, cache={"computed": True})
    assert computed.workflows[0].forecast.cost_p95 * 1000 == Decimal("15")  # a call every 86 s: it stays warm
    assert "stays cached between runs" in computed.notes[0]


def test_the_research_agent_costs_450_a_month_per_call_per_request() -> None:
    def month(calls: int) -> Decimal:
        result = modelled(
            {"researcher": {"model": "claude-sonnet-4-6", "steps": calls, "user_input": 50_000, "context": "none"}},
            {"research": {"agent": "researcher", "runs_per_day": 100}},
        )
        return result.month_p50

    one = modelled(
        {"researcher": {"model": "claude-sonnet-4-6", "user_input": 50_000}},
        {"research": {"agent": "researcher", "runs_per_day": 100}},
    )
    per_call = one.workflows[0].month_per_call
    assert per_call == Decimal("450")
    # so the seeds' $2,000–3,000 a month needs 5–7 calls per request
    assert (math.ceil(Decimal(2000) / per_call), math.ceil(Decimal(3000) / per_call)) == (5, 7)
    assert [month(n) for n in (4, 5, 6, 7)] == [Decimal(1800), Decimal(2250), Decimal(2700), Decimal(3150)]


def test_windows_summaries_and_no_context() -> None:
    def run_input(context: Any) -> int:
        return one_agent(steps=3, tool_results=1000, context=context).workflows[0].input_p50

    assert run_input("full") == 6000  # 1000 + 2000 + 3000
    assert run_input({"window": 1500}) == 5500  # 1000 + 2000 + (1500 + 1000)
    assert run_input({"summary": 0.5}) == 4500  # 1000 + (500 + 1000) + (1000 + 1000)
    assert run_input("none") == 3000


def test_outputs_are_carried_and_retries_billed_again() -> None:
    (w,) = one_agent(steps=2, user_input=100, output=50).workflows
    assert (w.input_p50, w.output_p50) == (100 + 250, 100)  # step 2 carries step 1's input and output
    always = one_agent(steps=1, user_input=100, output=10, retries={"rate": 0.999999, "max": 2}).workflows[0]
    assert always.forecast.calls_p50 == 3 and always.input_p50 == 300


def test_subagents_inherit_the_parents_context() -> None:
    result = modelled(
        {
            "lead": {
                "model": "claude-sonnet-4-6",
                "steps": 2,
                "tool_results": 1000,
                "subagents": [{"agent": "worker", "count": 2, "after_step": 1}],
            },
            "worker": {"model": "claude-haiku-4-5", "task_class": "search", "tool_results": 500},
        },
        {"w": {"agent": "lead", "runs_per_day": 10}},
    )
    (w,) = result.workflows
    assert w.input_p50 == 1000 + 2000 + 2 * 1500 and w.forecast.calls_p50 == 4
    by_class = {t.name: t for t in result.task_classes}
    assert set(by_class) == {"lead", "search"}
    assert by_class["search"].forecast.runs_per_day == 20  # two threads a run, ten runs a day
    assert by_class["search"].forecast.cost_p50 == Decimal(1500) / 1_000_000  # Haiku input, $1/MTok


def test_a_computed_cache_with_history_reads_what_the_last_call_sent() -> None:
    result = one_agent(steps=3, system_prompt=2000, tool_results=1000, cache={"computed": True, "history": True})
    calls = result.threads["a"][0].calls
    split = [(c.usage.input_tokens, c.usage.cache_read_tokens, c.usage.cache_write_5m_tokens) for c in calls]
    assert split == [(0, 0, 3000), (0, 3000, 1000), (0, 4000, 1000)]  # one run a day: cold at its start
    short = one_agent(steps=2, system_prompt=500, user_input=100, cache={"computed": True})
    assert all(c.usage.cache_read_tokens == 0 for c in short.threads["a"][0].calls)  # Sonnet 4.6 caches 2,048+
    forced = one_agent(steps=2, system_prompt=500, user_input=100, cache={"computed": True, "min_tokens": 256})
    assert [c.usage.cache_read_tokens for c in forced.threads["a"][0].calls] == [0, 500]


def test_the_same_seed_gives_the_same_figures() -> None:
    agent = {"model": "claude-sonnet-4-6", "steps": {"p50": 6, "p95": 15}, "tool_results": {"p50": 800, "p95": 5000}}
    agent["output"] = {"uniform": [100, 900]}

    def figures(seed: int) -> dict[str, Any]:
        return modelled({"a": agent}, {"w": {"agent": "a", "runs_per_day": 5}}, seed=seed).to_dict()

    assert figures(3) == figures(3)
    assert figures(3) != figures(4)
    first = figures(3)["workflows"][0]["per_run"]
    assert first["calls"]["p50"] <= first["calls"]["p95"]


def test_the_policy_has_a_budget_per_workflow_at_its_p95_month_with_alerts_at_50_80_100() -> None:
    result = one_agent(runs_per_day=100, steps=10, tool_results=20_000)  # $3.30 a run
    policy = parse_policy(yaml.safe_load(result.policy()))
    (budget,) = policy.budgets
    assert budget.name == "workflow-w-monthly" and budget.scope == (("workflow", "w"),)
    assert budget.limits.nanos == 9_900 * 10**9
    assert [(str(t.at), str(t.action)) for t in budget.thresholds] == [
        ("0.5", "warn"),
        ("0.8", "warn"),
        ("1.0", "partial"),
    ]
    by_class = parse_policy(yaml.safe_load(result.policy("task_class")))
    assert by_class.budgets[0].scope == (("task_class", "a"),)


@pytest.mark.parametrize(
    ("agent", "field"),
    [
        ({"model": "claude-sonnet-4-6", "steps": 0}, "agents.a.steps: Value error, a run has at least one step"),
        ({"model": "claude-sonnet-4-6", "steps": {"p50": 5}}, "agents.a.steps: Value error, give both p50 and p95"),
        ({"model": "claude-sonnet-4-6", "context": "some"}, "agents.a.context"),
        ({"model": "claude-sonnet-4-6", "cache": {"hit_rate": 2}}, "agents.a.cache.hit_rate"),
        ({"model": "claude-sonnet-4-6", "routing": {"claude-haiku-4-5": 1}}, "agents.a: Value error, give model"),
        ({"model": "claude-sonnet-4-6", "turns": 3}, "agents.a.turns: Extra inputs are not permitted"),
        ({"model": "no-such-model"}, "agents.a.model: unknown model 'no-such-model'"),
        ({"model": "claude-sonnet-4-6", "subagents": [{"agent": "b"}]}, "agents.a.subagents.0.agent: unknown agent"),
        ({"model": "claude-sonnet-4-6", "subagents": [{"agent": "a"}]}, "an agent cannot start itself (a -> a)"),
    ],
)
def test_a_bad_spec_is_one_error_naming_the_field(agent: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        one_agent(**agent)
    message = str(caught.value)
    assert field in message and "\n" not in message


def test_a_workflow_naming_no_agent() -> None:
    with pytest.raises(ConfigError, match=r"workflows\.w\.agent: unknown agent .b.; agents: a"):
        parse_spec({"agents": {"a": {"model": "m"}}, "workflows": {"w": {"agent": "b", "runs_per_day": 1}}})
