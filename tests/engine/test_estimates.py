"""Reservations tight yet never broken: the estimate (calibrated, with the policy's margin) is reserved on the
budget, the hard worst case is held on its worst-case counter, and a call is admitted only if both fit; the
tier is the one the input falls in; calibration and billed prefixes are learnt from settled calls."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from fiscus.engine import Action
from fiscus.engine.calibration import SCALE_ONE, BilledPrefixes, Calibration
from fiscus.engine.plan import Rates, hold_key
from fiscus.engine.ports import Amounts, Counter
from fiscus.pricing.sheet import PriceSheet, Rate

from .helpers import engine, request, spent

NOW = datetime(2026, 6, 15, 12, tzinfo=UTC).timestamp()
TEAM = {"name": "team", "scope": {"team": "growth"}, "window": "month", "limit": {"usd": 1}}
BLOCK = {**TEAM, "thresholds": [{"at": 1.0, "action": "block"}]}


def test_estimate_carries_the_margin_and_is_capped_by_the_hard_bound() -> None:
    eng = engine({"budgets": [TEAM], "estimate_margin": 0.25})
    plan = eng.plan(request(input_tokens=10_000, input_bound=40_000), NOW)
    assert plan.estimate_case().tokens == 12_500 and plan.hard_case().tokens == 40_000
    tight = eng.plan(request(input_tokens=10_000, input_bound=11_000), NOW)
    assert tight.estimate_case().tokens == tight.hard_case().tokens == 11_000  # never above the bound
    unbounded = eng.plan(request(input_tokens=10_000), NOW)
    assert unbounded.estimate_case() == unbounded.hard_case()  # no bound: the estimate stands for it


def test_the_hard_worst_case_must_fit_beside_what_is_held_in_flight() -> None:
    eng = engine({"budgets": [BLOCK], "estimate_margin": 0})
    req = request(model="claude-haiku-4-5", input_tokens=1_000, input_bound=40_000, max_tokens=100)
    plan = eng.plan(req, NOW)
    budget_key = plan.lines[0].keys[0]
    # $0.001 + $0.0005 estimated; $0.04 + $0.0005 at most: far from the limit both fit, the estimate is reserved
    calm = eng.decide(req, plan, {})
    assert calm.action is Action.ALLOW and calm.reserve == Amounts(1_500_000, 1_100, 1)
    assert calm.hold == Amounts(40_500_000, 40_100, 1)
    # $0.98 held at worst by calls in flight (their estimates only $0.50): $0.02 left for this one's worst case
    busy = {
        budget_key: Counter(reserved=Amounts(nanos=500_000_000)),
        hold_key(budget_key): Counter(reserved=Amounts(nanos=980_000_000)),
    }
    refused = eng.decide(req, plan, busy)
    assert (refused.action is not Action.ALLOW and refused.model != "claude-opus-4-1") or not refused.calls_model
    assert not refused.calls_model or refused.downgraded
    # the same with the worst cases settled small: room again
    settled = {budget_key: spent("0.5"), hold_key(budget_key): spent("0.5")}
    assert eng.decide(req, plan, settled).action is Action.ALLOW


def test_reserve_lines_hold_the_worst_case_on_the_worst_case_counters() -> None:
    eng = engine({"budgets": [TEAM]})
    req = request(input_tokens=1_000, input_bound=4_000)
    plan = eng.plan(req, NOW)
    decision = eng.decide(req, plan, {})
    budget, hold = eng.reserve_lines(plan, decision)
    assert budget.keys == plan.lines[0].keys and hold.keys == tuple(hold_key(k) for k in budget.keys)
    assert hold.budget == f"{budget.budget}#hold" and hold.limits == budget.limits
    assert budget.amount == decision.reserve and hold.amount == decision.hold
    assert hold.amount.nanos > budget.amount.nanos
    lines, amount, held = eng.quiet_lines(plan) or ((), Amounts(), Amounts())
    assert [line.budget for line in lines] == ["b:team", "b:team#hold"]
    assert (amount, held) == (decision.reserve, decision.hold)


def test_tiers_follow_the_input_that_can_reach_them() -> None:
    tiered = PriceSheet(
        "anthropic",
        "m",
        input=Rate(Decimal(3), ((200_000, Decimal(6)),)),
        output=Rate(Decimal(15), ((200_000, Decimal("22.5")),)),
        cache_write_5m=Rate(Decimal("3.75"), ((200_000, Decimal("7.5")),)),
        cache_write_1h=Rate(Decimal(6), ((200_000, Decimal(12)),)),
        context_window=200_000,  # a tier above the stated window: the window is no cap
    )
    rates = Rates.of(tiered)
    assert rates.context_window is None and [t.above for t in rates.tiers] == [-1, 200_000]
    assert rates.at(200_000).input == 3 * 10**9 and rates.at(200_001).input == 6 * 10**9
    assert rates.at(200_001).write_1h == 12 * 10**9 and rates.at(1).output == 15 * 10**9
    capped = Rates.of(
        PriceSheet("openai", "m", input=Rate(Decimal(1)), output=Rate(Decimal(1)), context_window=128_000)
    )
    assert capped.context_window == 128_000


def test_calibration_learns_per_agent_and_model_and_stays_bounded() -> None:
    cal = Calibration(max_keys=3)
    assert cal.ratio("anthropic", "m", "a") == SCALE_ONE
    cal.observe("anthropic", "m", "a", counted=1000, actual=4000)  # one token per character of CJK
    assert cal.ratio("anthropic", "m", "a") == 4 * SCALE_ONE  # the first sample sets it
    assert cal.ratio("anthropic", "m", "b") == 4 * SCALE_ONE  # another agent: the model's ratio
    cal.observe("anthropic", "m", "a", counted=1000, actual=1000)
    assert cal.ratio("anthropic", "m", "a") == 4 * SCALE_ONE - 3 * SCALE_ONE // 4  # a quarter of the way back
    cal.observe("anthropic", "m", "a", counted=0, actual=10)  # nothing counted: nothing learnt
    cal.observe("openai", "x", "c", counted=10, actual=10_000)  # clamped: one sample cannot run away
    assert cal.ratio("openai", "x", "c") == 16 * SCALE_ONE
    assert len(cal.ratios) <= 3
    rows = cal.rows()
    assert all(row.samples >= 1 for row in rows) and rows[0].ratio > 0


def test_calibration_scales_the_next_estimate() -> None:
    eng = engine({"budgets": [TEAM], "estimate_margin": 0.2})
    req = request(input_tokens=1_000)
    assert eng.plan(req, NOW).estimate_case().tokens == 1_200
    eng.calibration.observe("anthropic", req.model, req.attribution.agent, 1_000, 2_000)
    assert eng.plan(req, NOW).estimate_case().tokens == 2_400


def test_a_billed_prefix_bounds_the_next_turn_by_its_bill() -> None:
    eng = engine({"budgets": [TEAM]})
    chain = ((11, 900), (22, 300), (33, 8))
    first = request(input_tokens=100, input_bound=1_000, input_chain=chain[:2])
    assert eng.plan(first, NOW).hard_case().tokens == 1_000
    eng.prefixes.billed("anthropic", first.model, first.input_chain, 120)  # the provider billed 120 tokens
    second = request(input_tokens=150, input_bound=1_400, input_chain=chain)
    assert eng.plan(second, NOW).hard_case().tokens == 120 + 300  # the bill, plus what the new turn can add
    other = request(model="claude-sonnet-4-5", input_tokens=150, input_bound=1_400, input_chain=chain)
    assert eng.plan(other, NOW).hard_case().tokens == 1_400  # another model's bill says nothing
    memory = BilledPrefixes(max_keys=2)
    for n in range(5):
        memory.billed("p", "m", ((n, 0),), 10)
    assert len(memory) == 2 and memory.bound("p", "m", ((4, 5),)) == 15 and memory.bound("p", "m", ((0, 5),)) is None


def test_the_reserve_follows_what_the_shape_settled_at_and_the_hold_does_not() -> None:
    eng = engine({"budgets": [TEAM], "estimate_margin": 0.2})
    req = request(model="claude-sonnet-4-5", input_tokens=10_000, input_bound=40_000, max_tokens=1_000)
    first = eng.plan(req, NOW)
    reserve, hold = first.worst_case(), first.hold()
    assert reserve.nanos == 12_000 * 3_000 + 1_000 * 15_000  # no cost seen yet: the whole estimate
    # the shape settled at a tenth of its estimate (a cached prompt read): the reserve follows, × 1.2
    eng.calibration.observe_cost("anthropic", req.model, req.attribution.agent, reserve.nanos, reserve.nanos // 10)
    later = eng.plan(req, NOW)
    assert later.worst_case().nanos == -(-reserve.nanos * 120_000 // SCALE_ONE)
    assert later.hold() == hold  # the worst case is never scaled down
    eng.calibration.observe_cost("anthropic", req.model, req.attribution.agent, reserve.nanos, 2 * reserve.nanos)
    assert eng.plan(req, NOW).worst_case() == reserve  # never above the estimate
    (row,) = [r for r in eng.calibration.rows() if r.agent == req.attribution.agent] or [None]
    assert row is None or row.cost_ratio is not None
