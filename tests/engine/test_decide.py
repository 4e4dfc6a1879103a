from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from fiscus.attribution import Attribution
from fiscus.engine import EFFECTS, Action, Engine
from fiscus.engine.ports import Counter
from fiscus.meters import Amounts
from fiscus.policy import parse_policy
from fiscus.pricing.sheet import PriceSheet, Rate

from .helpers import engine, request, spent

NOW = datetime(2026, 6, 15, 12, tzinfo=UTC).timestamp()
TEAM = {"name": "team", "scope": {"team": "growth"}, "window": "month", "limit": {"usd": 100}}
USER = {"name": "user", "scope": {"user": "*"}, "window": "day", "limit": {"usd": 10}}


def counters_for(eng, req, **usd: str) -> dict[str, Counter]:  # type: ignore[no-untyped-def]
    plan = eng.plan(req, NOW)
    return {line.keys[0]: spent(usd[line.budget.name]) for line in plan.lines if line.budget.name in usd}


def test_scope_matching_values_lists_each_and_combinations() -> None:
    eng = engine(
        {
            "budgets": [
                {"name": "all", "limit": {"usd": 1}},
                {"name": "growth-prod", "scope": {"team": "growth", "environment": "prod"}, "limit": {"usd": 1}},
                {"name": "envs", "scope": {"environment": ["dev", "prod"]}, "limit": {"usd": 1}},
                {"name": "per-user", "scope": {"user": "*"}, "limit": {"usd": 1}},
                {"name": "other-team", "scope": {"team": "core"}, "limit": {"usd": 1}},
            ]
        }
    )
    prod = request(attribution=Attribution(team="growth", environment="prod", user="a|b"))
    lines = {line.budget.name: line for line in eng.plan(prod, NOW).lines}
    assert set(lines) == {"all", "growth-prod", "envs", "per-user"}
    assert lines["per-user"].instance == "b:per-user|user=a%7Cb"  # values are quoted into keys
    assert lines["growth-prod"].instance == "b:growth-prod"
    staging = request(attribution=Attribution(team="growth", environment="staging"))
    assert {line.budget.name for line in eng.plan(staging, NOW).lines} == {"all"}  # no user: per-user skipped


def test_most_restrictive_action_wins_and_reasons_name_every_budget() -> None:
    eng = engine({"budgets": [TEAM, USER]})
    req = request()
    decision = eng.decide(req, eng.plan(req, NOW), counters_for(eng, req, team="81", user="9.2"))
    assert decision.action is Action.COMPRESS  # user at 92 %: downgrade + compress beat the team's warn
    assert Action.DOWNGRADE in decision.extra_actions
    assert [(r.budget, r.utilisation, r.action) for r in decision.reasons] == [
        ("team", Decimal("0.8100"), Action.WARN),
        ("user user=alice", Decimal("0.9200"), Action.COMPRESS),
    ]
    assert decision.model == "claude-sonnet-4-5" and decision.downgraded  # one tier, not to haiku
    assert decision.compress_to_tokens == 500


def test_downgrade_goes_one_tier_even_when_several_budgets_ask() -> None:
    eng = engine({"budgets": [TEAM, USER]})
    req = request()
    decision = eng.decide(req, eng.plan(req, NOW), counters_for(eng, req, team="95", user="9.5"))
    assert decision.model == "claude-sonnet-4-5"
    bottom = request("claude-haiku-4-5")
    at_bottom = eng.decide(bottom, eng.plan(bottom, NOW), counters_for(eng, bottom, team="95"))
    assert at_bottom.model == "claude-haiku-4-5" and not at_bottom.downgraded


def test_max_tokens_clamped_so_the_worst_case_fits() -> None:
    policy = {
        "budgets": [
            {
                "name": "b",
                "scope": {"team": "growth"},
                "limit": {"usd": 1},
                "thresholds": [{"at": 1.0, "action": "block"}],
            }
        ]
    }
    eng = engine(policy)
    req = request(input_tokens=10_000, max_tokens=8000)  # opus: $0.15 input + $0.60 output worst case
    plan = eng.plan(req, NOW)
    decision = eng.decide(req, plan, {plan.keys[0]: spent("0.5")})
    # $0.50 left - $0.18 input (10k + the 20 % margin at $15/M) = $0.32 of output at $75/M → 4266 tokens
    assert decision.action is Action.ALLOW and decision.max_tokens == 4266
    assert decision.reserve is not None and decision.reserve.nanos <= 500_000_000
    # $0.15 left: opus's input alone fills it, so the call goes one tier down instead (sonnet: $0.036 input,
    # ($0.15 - $0.036) / $15 per M = 7600 output tokens).
    tight = eng.decide(req, plan, {plan.keys[0]: spent("0.85")})
    assert tight.action is Action.DOWNGRADE and tight.model == "claude-sonnet-4-5" and tight.downgraded
    assert tight.max_tokens == 7600 and tight.reserve is not None and tight.reserve.nanos <= 150_000_000
    # $0.02 left: not even one tier down fits (never two tiers): refused, with the window's reset.
    tighter = eng.decide(req, plan, {plan.keys[0]: spent("0.98")})
    assert tighter.action is Action.BLOCK and not tighter.calls_model and tighter.reserve is None
    assert tighter.retry_at == datetime(2026, 7, 1, tzinfo=UTC)
    assert "cannot fit this call" in tighter.message


def test_worst_case_prices_cache_writes_only_up_to_the_last_breakpoint() -> None:
    cached = PriceSheet(
        provider="anthropic",
        model="claude-sonnet-4-5",
        input=Rate(Decimal(3)),
        output=Rate(Decimal(15)),
        cache_write_1h=Rate(Decimal(6)),
    )
    eng = Engine(parse_policy({"budgets": [TEAM]}), lambda provider, model, batch, now: cached)
    base = {"model": "claude-sonnet-4-5", "input_tokens": 100_000, "max_tokens": 1}
    everything = eng.plan(request(**base), NOW).worst_case()
    prefix = eng.plan(request(**base, cache_write_tokens=10_000), NOW).worst_case()
    plain = eng.plan(request(**base, cache_writes=False), NOW).worst_case()
    # 100k counted + the 20 % margin = 120k: $6/M on all; $6/M on the 12k prefix + $3/M on the rest; $3/M on
    # all (plus one output token at $15/M).
    assert everything.nanos == 720_015_000
    assert prefix.nanos == 396_015_000
    assert plain.nanos == 360_015_000


def test_priority_reserve_keeps_the_last_share_for_critical_and_normal() -> None:
    policy = {"priority": {"reserve_for_critical": 0.1}, "budgets": [TEAM]}
    eng = engine(policy)
    for priority, expected in (
        ("background", Action.PARTIAL),
        ("normal", Action.COMPRESS),
        ("critical", Action.COMPRESS),
    ):
        req = request(priority=priority, input_tokens=1000, max_tokens=1000)
        plan = eng.plan(req, NOW)
        decision = eng.decide(req, plan, {plan.keys[0]: spent("90")})
        assert decision.action is expected, priority


def test_task_preflight_reserves_n_calls_or_says_when_the_window_resets() -> None:
    eng = engine({"budgets": [{**TEAM, "thresholds": [{"at": 1.0, "action": "partial"}]}]})
    ten = request(calls=10, input_tokens=10_000, max_tokens=1000)  # opus: $0.255 per call (12k input with margin)
    plan = eng.plan(ten, NOW)
    ok = eng.decide(ten, plan, {})
    assert ok.reserve is not None and ok.reserve.nanos == 2_550_000_000 and ok.reserve.requests == 10
    # $1.50 left: ten opus calls do not fit, ten one tier down do.
    lower = eng.decide(ten, plan, {plan.keys[0]: spent("98.5")})
    assert lower.action is Action.DOWNGRADE and lower.model == "claude-sonnet-4-5"
    assert lower.reserve is not None and lower.reserve.nanos <= 1_500_000_000 and lower.reserve.requests == 10
    short = eng.decide(ten, plan, {plan.keys[0]: spent("99.8")})
    assert short.action is Action.PARTIAL
    assert "a task of 10 calls" in short.message
    assert short.retry_at == datetime(2026, 7, 1, tzinfo=UTC)


def test_throttle_admits_a_fraction_and_spares_critical() -> None:
    eng = engine(
        parse_policy(
            {
                "budgets": [
                    {
                        "name": "t",
                        "scope": {"team": "growth"},
                        "limit": {"usd": 100},
                        "thresholds": [{"at": 0.5, "action": "throttle", "fraction": 0.25}],
                    }
                ]
            }
        )
    )
    req = request()
    plan = eng.plan(req, NOW)
    counters = {plan.keys[0]: spent("60")}
    assert eng.decide(req, plan, counters, draw=0.2).action is Action.THROTTLE
    refused = eng.decide(req, plan, counters, draw=0.3)
    assert refused.action is Action.BLOCK and "throttled" in refused.message
    critical = request(priority="critical")
    assert eng.decide(critical, eng.plan(critical, NOW), counters, draw=0.99).action is Action.ALLOW


def test_an_override_passes_an_overridable_block_and_is_named() -> None:
    eng = engine(
        parse_policy(
            {
                "budgets": [
                    {
                        "name": "h",
                        "scope": {"team": "growth"},
                        "limit": {"usd": 100},
                        "thresholds": [{"at": 1.0, "action": "block", "override": True}],
                    },
                    {"name": "firm", "scope": {"team": "growth"}, "limit": {"usd": 100}, "on_exhausted": "block"},
                ]
            }
        )
    )
    blocked = request()
    plan = eng.plan(blocked, NOW)
    assert eng.decide(blocked, plan, {plan.keys[0]: spent("100")}).action is Action.BLOCK
    for granted in ((("*", "ov_all"),), (("other", "ov_x"), ("h", "ov_h"))):
        keyed = request(overrides=granted)
        plan = eng.plan(keyed, NOW)
        decision = eng.decide(keyed, plan, {plan.keys[0]: spent("100")})
        assert decision.calls_model and decision.overridden == ("b:h",)
        assert decision.override_ids == (granted[-1][1],)
        line, firm, line_hold, firm_hold = eng.reserve_lines(plan, decision)
        assert line.limits.nanos is None and firm.limits.nanos is not None  # only the overridden one is lifted
        assert line_hold.limits.nanos is None and firm_hold.limits.nanos is not None  # and its worst-case hold
        # a budget the policy does not mark overridable refuses whatever is granted
        refused = eng.decide(keyed, plan, {plan.keys[0]: spent("100"), plan.keys[1]: spent("100")})
        assert not refused.calls_model and refused.exhausted_budget == "firm"
    other = request(overrides=(("firm", "ov_f"),))  # an override for another budget lifts nothing here
    plan = eng.plan(other, NOW)
    assert eng.decide(other, plan, {plan.keys[0]: spent("100")}).action is Action.BLOCK


def test_effects_table_covers_every_action() -> None:
    assert set(EFFECTS) == set(Action)
    assert [a for a in Action if EFFECTS[a].refuses] == [Action.PARTIAL, Action.BLOCK]


def test_rolling_retry_at_is_when_enough_old_buckets_drop() -> None:
    eng = engine(
        {
            "budgets": [
                {
                    "name": "r",
                    "scope": {"team": "growth"},
                    "window": {"rolling": "4h", "buckets": 4},
                    "limit": {"usd": 1},
                    "thresholds": [{"at": 1.0, "action": "block"}],
                }
            ]
        }
    )
    req = request("claude-haiku-4-5", input_tokens=10_000, max_tokens=100)  # the bottom tier: no fallback
    plan = eng.plan(req, NOW)
    keys = plan.lines[0].keys
    counters = {keys[3]: spent("0.5"), keys[1]: spent("0.49")}  # oldest bucket holds half the budget
    decision = eng.decide(req, plan, counters)
    assert decision.action is Action.BLOCK
    assert decision.retry_at == datetime.fromtimestamp(plan.lines[0].window.drops_at[3], UTC)


def test_an_exhausted_budget_gives_its_on_exhausted_answer_at_100_percent_and_below() -> None:
    """`on_exhausted: block` with the default thresholds (partial at 1.0): a call that no longer fits and a call
    that finds the budget at 100 % get the same block, whatever the counters read at that instant."""
    eng = engine(
        {"budgets": [{"name": "firm", "scope": {"team": "growth"}, "limit": {"requests": 10}, "on_exhausted": "block"}]}
    )
    ask = request()
    plan = eng.plan(ask, NOW)
    at_limit = Counter(spent=Amounts(0, 0, 10), reserved=Amounts(0, 0, 0))
    held_by_others = Counter(spent=Amounts(0, 0, 9), reserved=Amounts(0, 0, 1))
    for counter in (at_limit, held_by_others):
        decision = eng.decide(ask, plan, {plan.keys[0]: counter})
        assert decision.action is Action.BLOCK and decision.exhausted_budget == "firm"
    roomy = eng.decide(ask, plan, {plan.keys[0]: Counter(spent=Amounts(0, 0, 5), reserved=Amounts(0, 0, 0))})
    assert roomy.calls_model
