"""The hot path: integer rates, cached plan shapes, the quiet decision and the optimistic reservation give what
the full assessment gives."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import event, given, settings
from hypothesis import strategies as st

from fiscus.attribution import Attribution
from fiscus.engine import Action, Engine, decide
from fiscus.engine.decide import quiet
from fiscus.engine.plan import RATE_SCALE, Rates, hold_key, scaled_rate
from fiscus.engine.ports import Amounts, Counter, Limits, Reservation, ReserveLine
from fiscus.policy import parse_policy
from fiscus.pricing.sheet import PriceSheet, Rate
from fiscus.stores import MemoryStore

from .helpers import engine, request

NOW = datetime(2026, 6, 15, 12, tzinfo=UTC).timestamp()
BUDGETS = {
    "budgets": [
        {"name": "team", "scope": {"team": "growth"}, "window": "month", "limit": {"usd": 100, "requests": 500}},
        {"name": "user", "scope": {"user": "*"}, "window": {"rolling": "4h", "buckets": 4}, "limit": {"usd": 10}},
        {"name": "bare", "scope": {"team": "growth"}, "window": "day", "limit": {"tokens": 2e6}, "thresholds": []},
    ]
}


def test_rates_are_integer_nanos_per_token_scaled_and_rounded_up() -> None:
    assert scaled_rate(Decimal("0.15")) == 150_000_000  # $0.15/M = 150 nano-dollars per token, × 1e6
    assert scaled_rate(Decimal("75")) == 75 * 10**9
    assert scaled_rate(Decimal("0.0000000001")) == 1  # finer than the scale: rounded up, never down
    sheet = PriceSheet("anthropic", "m", input=Rate(Decimal(3)), output=Rate(Decimal(15)))
    rates = Rates.of(sheet)
    assert (rates.input, rates.output) == (3 * 10**9, 15 * 10**9)
    assert rates.input * 1000 // RATE_SCALE == 3_000_000  # 1,000 input tokens at $3/M = $0.003


def test_worst_case_rounds_up_to_the_nano_dollar_once_over_all_calls() -> None:
    def tiny(provider: str, model: str, batch: bool, now: float) -> PriceSheet:  # 1.5 and 0.5 nano-dollars a token
        return PriceSheet(provider, model, input=Rate(Decimal("0.0015")), output=Rate(Decimal("0.0005")))

    eng = Engine(parse_policy({"budgets": [], "estimate_margin": 0}), tiny)
    plan = eng.plan(request(input_tokens=1, max_tokens=2), NOW)  # 1.5 + 1.0 = 2.5 nano-dollars
    assert plan.worst_case() == Amounts(nanos=3, tokens=3, requests=1)
    three = eng.plan(request(input_tokens=1, max_tokens=2, calls=3), NOW)  # 7.5, not 3 × 3
    assert three.worst_case() == Amounts(nanos=8, tokens=9, requests=3)


def test_plan_shape_is_reused_inside_the_window_and_rebuilt_after_it() -> None:
    eng = engine(BUDGETS)
    req = request()
    first, again = eng.plan(req, NOW), eng.plan(req, NOW + 30)
    assert again.shape is first.shape and again.keys == first.keys
    other_user = request(attribution=Attribution(team="growth", user="bob"))
    assert eng.plan(other_user, NOW).shape is not first.shape
    later = eng.plan(req, NOW + 3600)  # the next rolling bucket: new keys for the user budget
    assert later.shape is not first.shape
    assert later.lines[1].keys[0] != first.lines[1].keys[0] and later.lines[0].keys == first.lines[0].keys
    fresh = engine(BUDGETS).plan(req, NOW + 3600)
    assert later.keys == fresh.keys and later.lines == fresh.lines


def test_session_window_expiry_follows_each_call_through_the_cache() -> None:
    prepaid = {"name": "p", "window": "never", "limit": {"usd": 5}}
    eng = engine({"budgets": [{"name": "s", "window": "session", "limit": {"usd": 1}}, prepaid]})
    req = request()
    one, two = eng.plan(req, NOW), eng.plan(req, NOW + 50)
    assert one.shape is two.shape
    assert one.keys == two.keys == ("b:s|session:s1", "b:p|never", "h:s|session:s1", "h:p|never")
    ttl = eng.policy.session_ttl_seconds
    assert (one.lines[0].window.expires_at, two.lines[0].window.expires_at) == (NOW + ttl, NOW + 50 + ttl)
    assert one.lines[1].window.expires_at is None and two.lines[1].window.expires_at is None  # kept for ever


def test_reasons_keep_the_budgets_with_something_to_say_and_engine_lists_all() -> None:
    eng = engine(BUDGETS)
    req = request()
    plan = eng.plan(req, NOW)
    calm = eng.decide(req, plan, {})
    assert calm.action is Action.ALLOW and calm.reasons == () and calm.hits == ()
    warm = {plan.lines[0].keys[0]: Counter(spent=Amounts(nanos=85 * 10**9))}
    decision = eng.decide(req, plan, warm)
    assert [(r.budget, r.action) for r in decision.reasons] == [("team", Action.WARN)]
    everything = eng.reasons(plan, warm)
    assert [(r.budget, r.action) for r in everything] == [
        ("team", Action.WARN),
        ("user user=alice", Action.ALLOW),
        ("bare", Action.ALLOW),
    ]


amounts = st.builds(
    Amounts,
    nanos=st.integers(0, 12 * 10**9),
    tokens=st.integers(0, 2_100_000),
    requests=st.integers(0, 520),
)


@settings(max_examples=150, deadline=None)
@given(
    team=amounts,
    user=st.lists(amounts, min_size=4, max_size=4),
    bare=amounts,
    tokens_in=st.integers(0, 200_000),
    max_tokens=st.integers(1, 20_000),
    calls=st.integers(1, 4),
    priority=st.sampled_from(["critical", "normal", "background"]),
    cache_writes=st.booleans(),
)
def test_quiet_decision_and_optimistic_reservation_agree_with_the_full_assessment(
    team: Amounts,
    user: list[Amounts],
    bare: Amounts,
    tokens_in: int,
    max_tokens: int,
    calls: int,
    priority: str,
    cache_writes: bool,
) -> None:
    eng = engine({"priority": {"reserve_for_critical": 0.1}, **BUDGETS})
    req = request(
        input_tokens=tokens_in, max_tokens=max_tokens, calls=calls, priority=priority, cache_writes=cache_writes
    )
    plan = eng.plan(req, NOW)
    used = {plan.lines[0].keys[0]: team, plan.lines[2].keys[0]: bare}
    used.update(zip(plan.lines[1].keys, user, strict=True))
    used.update({hold_key(key): amount for key, amount in used.items()})  # spend lands on both counters
    counters = {key: Counter(spent=amount) for key, amount in used.items()}

    full = decide(eng.policy, plan, counters, sheet_for=lambda model: eng.rates("anthropic", model, False, NOW))
    fast = quiet(eng.policy, plan, counters)
    if fast is not None:
        assert fast == full
    else:
        assert full.hits or full.action is not Action.ALLOW or full.max_tokens < plan.max_tokens

    store = MemoryStore()
    for n, (key, amount) in enumerate(used.items()):  # the same use, as spend in a real store
        seeded = store.reserve(f"seed{n}", (ReserveLine("seed", (key,), Limits(), amount),), now=NOW, lease_seconds=60)
        assert isinstance(seeded, Reservation)
        store.settle(seeded, amount, now=NOW)
    lines, amount, held = eng.quiet_lines(plan) or ((), Amounts(), Amounts())
    granted = isinstance(store.reserve("call", lines, now=NOW, lease_seconds=60), Reservation)
    event(f"quiet={fast is not None} granted={granted}")
    if granted:  # a granted optimistic reservation stands for exactly the decision the full path gives
        assert eng.quiet_decision(plan, amount, held) == full
        assert amount == full.reserve
