"""What a key's override passes among the breakers (`BreakerRegistry.check_passing`): the open breakers whose kind
`guards.overridable` names, never a model's; a passed breaker stays open, and a half-open one keeps its probe for a
call that needs one: the passed call's outcome neither closes nor reopens it."""

from __future__ import annotations

from decimal import Decimal

from fiscus.guards import BreakerConfig, BreakerRegistry
from fiscus.guards.breaker import BreakerState
from fiscus.guards.overridable import GuardOverrides, key_grant, kind_of, passed_scopes

ALL = GuardOverrides(frozenset({"global_spend_rate", "agent_spend_rate", "key_error_rate", "loop"}))


def _registry(now: list[float]) -> BreakerRegistry:
    config = BreakerConfig(cooldown_s=60, error_rate=0.5, error_window=2, min_calls=2)
    return BreakerRegistry(config, clock=lambda: now[0], postmortem_dir=None)


def test_kinds_of_breakers_and_what_counts_as_a_key_grant() -> None:
    assert [kind_of(s) for s in ("global", "agent:a", "key:vk_1", "model:openai/gpt-4o")] == [
        "global_spend_rate",
        "agent_spend_rate",
        "key_error_rate",
        None,
    ]
    assert not ALL.breaker("model:openai/gpt-4o") and ALL.breaker("agent:a") and ALL.loop
    assert not GuardOverrides(frozenset({"loop"})).breaker("global")
    assert key_grant((("growth-daily", "ov_b"), ("*", "ov_k"))) == "ov_k"
    assert key_grant((("growth-daily", "ov_b"),)) is None  # a budget's override passes no guard
    assert passed_scopes((("agent:a", "ov_k"), ("loop", "ov_k"))) == frozenset({"agent:a"})


def test_an_open_breaker_is_passed_only_where_marked_and_a_model_never() -> None:
    now = [1_000_000.0]
    registry = _registry(now)
    registry.trip("a", "spend_rate", "burst")
    for _ in range(2):  # the provider fails: the model's breaker opens
        registry.record("b", ok=False, provider="openai", model="gpt-4o")
    opened = registry.check("a")
    assert opened is not None and opened.scope == "agent:a"
    assert registry.check_passing("a", passable=ALL.breaker) == (None, ("agent:a",))
    only_loops = GuardOverrides(frozenset({"loop"}))
    refused, passed = registry.check_passing("a", passable=only_loops.breaker)
    assert refused is opened and passed == ()
    refused, passed = registry.check_passing("a", provider="openai", model="gpt-4o", passable=ALL.breaker)
    assert refused is not None and refused.scope == "model:openai/gpt-4o" and passed == ("agent:a",)
    assert registry.breaker("agent:a").state is BreakerState.OPEN  # passing it changed nothing


def test_a_passed_call_takes_no_probe_and_does_not_close_the_breaker() -> None:
    now = [1_000_000.0]
    registry = _registry(now)
    registry.trip("a", "spend_rate", "burst")
    now[0] += 61  # cooldown over: half-open, one probe
    assert registry.check_passing("a", passable=ALL.breaker) == (None, ())  # the free probe: no override needed
    assert registry.check_passing("a", passable=ALL.breaker) == (None, ("agent:a",))  # the probe is out: passed
    assert registry.check("a") is not None  # without leave: refused
    registry.record("a", cost=Decimal("0.01"), passed=frozenset({"agent:a"}))
    assert registry.breaker("agent:a").state is BreakerState.HALF_OPEN  # the passed call was no probe
    registry.record("a", cost=Decimal("0.01"))  # the probe's success closes it
    assert registry.breaker("agent:a").state is BreakerState.CLOSED
