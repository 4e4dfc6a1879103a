import json
import random
from decimal import Decimal
from pathlib import Path

import pytest

from fiscus.errors import ConfigError
from fiscus.guards import BreakerConfig, BreakerRegistry, BreakerState, CircuitBreaker
from fiscus.guards.breaker import TRANSITIONS, BreakerInput


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_transition_table_is_the_state_machine():
    assert TRANSITIONS[(BreakerState.CLOSED, BreakerInput.TRIP)] is BreakerState.OPEN
    assert TRANSITIONS[(BreakerState.OPEN, BreakerInput.COOLDOWN_ELAPSED)] is BreakerState.HALF_OPEN
    assert TRANSITIONS[(BreakerState.HALF_OPEN, BreakerInput.SUCCESS)] is BreakerState.CLOSED
    assert TRANSITIONS[(BreakerState.HALF_OPEN, BreakerInput.FAILURE)] is BreakerState.OPEN


def test_open_then_half_open_probe_then_closed():
    clock = Clock()
    b = CircuitBreaker("agent:a", BreakerConfig(cooldown_s=60), clock)
    assert b.allow()
    trip = b.trip("budget_exhausted", "team budget exhausted")
    assert trip.reopens_at == clock.now + 60
    assert b.state is BreakerState.OPEN and not b.allow()
    clock.now += 61
    assert b.state is BreakerState.HALF_OPEN
    assert b.allow()  # the one probe
    assert not b.allow()  # no second probe while the first is out
    assert b.record(ok=True) is None
    assert b.state is BreakerState.CLOSED and b.allow()


def test_failed_probe_reopens():
    clock = Clock()
    b = CircuitBreaker("g", BreakerConfig(cooldown_s=10), clock)
    b.trip("loop", "loop")
    clock.now += 10
    assert b.allow()
    trip = b.record(ok=False)
    assert trip is not None and trip.reason == "probe_failed"
    assert b.state is BreakerState.OPEN


def test_spend_rate_above_k_times_median_trips():
    clock = Clock(3600 * 1000)
    b = CircuitBreaker("g", BreakerConfig(spend_rate_k=Decimal(3), min_history_hours=3), clock)
    for _ in range(3):  # three ordinary hours of $1
        for _ in range(4):
            assert b.record(cost=Decimal("0.25")) is None
        clock.now += 3600
    assert b.record(cost=Decimal("2.9")) is None  # under 3 × $1
    trip = b.record(cost=Decimal("0.2"))  # $3.1 this hour
    assert trip is not None and trip.reason == "spend_rate"
    assert trip.details["median_hourly_usd"] == "1.00"


def test_no_spend_rate_trip_without_history():
    b = CircuitBreaker("g", BreakerConfig(), Clock())
    assert b.record(cost=Decimal(1000)) is None


def test_error_rate_trips():
    b = CircuitBreaker("g", BreakerConfig(error_rate=0.5, min_calls=4, error_window=4), Clock())
    assert b.record(ok=True) is None
    assert b.record(ok=False) is None
    assert b.record(ok=True) is None
    trip = b.record(ok=False)
    assert trip is not None and trip.reason == "error_rate"


def test_config_validation():
    with pytest.raises(ConfigError):
        BreakerConfig(cooldown_s=-1)
    with pytest.raises(ConfigError):
        BreakerConfig(error_rate=2)


def test_registry_per_agent_and_global_with_postmortem(tmp_path):
    clock = Clock()
    seen: list[object] = []
    reg = BreakerRegistry(BreakerConfig(cooldown_s=30), clock=clock, postmortem_dir=tmp_path, on_event=seen.append)
    assert reg.check("a") is None
    event = reg.trip("a", "loop", "ping-pong", state={"session": "s1", "cost_usd": "1.5"})
    assert reg.check("a") is not None and reg.check("b") is None
    assert seen == [event] and event.scope == "agent:a"
    saved = json.loads(Path(event.postmortem_path).read_text())
    assert saved["session"]["session"] == "s1" and saved["reason"] == "loop"
    reg.trip(None, "budget_exhausted", "org budget gone")
    assert reg.check("b") is not None  # the global breaker refuses everyone
    states = {s["scope"]: s["state"] for s in reg.snapshot()}
    assert states == {"global": "open", "agent:a": "open"}
    clock.now += 31
    assert reg.check("b") is None  # half-open: the probe goes through


def test_half_open_lets_the_configured_probes_through_and_needs_them_all():
    clock = Clock()
    b = CircuitBreaker("g", BreakerConfig(cooldown_s=10, half_open_probes=2), clock)
    b.trip("loop", "loop")
    clock.now += 10
    assert b.allow() and b.allow() and not b.allow()
    assert b.record(ok=True) is None and b.state is BreakerState.HALF_OPEN  # one of two
    assert b.record(ok=True) is None and b.state is BreakerState.CLOSED
    assert b.since == clock.now
    with pytest.raises(ConfigError):
        BreakerConfig(half_open_probes=0)


def test_adopt_takes_newer_records_only():
    clock = Clock()
    here = CircuitBreaker("agent:a", BreakerConfig(cooldown_s=60), clock)
    there = CircuitBreaker("agent:a", BreakerConfig(cooldown_s=300), clock)  # another process's breaker
    clock.now += 1
    there_trip = there.trip("spend_rate", "too fast", {"k": "3"})
    assert here.adopt(there.to_record()) and here.state is BreakerState.OPEN and not here.allow()
    assert here.last_trip is not None and here.last_trip.reopens_at == there_trip.reopens_at == clock.now + 300
    assert here.last_trip.details == {"k": "3"} and here.trips == 1
    assert not here.adopt(there.to_record())  # same record again: nothing new
    clock.now += 1
    here.trip("loop", "newer, here")
    assert not here.adopt(there.to_record())  # older than this breaker's own trip
    assert here.last_trip.reason == "loop"


def test_error_window_slides_failures_out():
    b = CircuitBreaker("g", BreakerConfig(error_rate=0.5, min_calls=4, error_window=4, spend_rate_k=None), Clock())
    for ok in (False, True, True, True, True):  # the failure has left the window of four
        assert b.record(ok=ok) is None
    assert b.record(ok=False) is None  # 1 of 4
    trip = b.record(ok=False)  # 2 of 4
    assert trip is not None and trip.reason == "error_rate" and trip.details["failures"] == 2


def test_error_window_counts_match_the_window_through_trips_and_closes():
    clock = Clock()
    rng = random.Random(7)
    b = CircuitBreaker("g", BreakerConfig(cooldown_s=5, error_rate=0.4, min_calls=3, error_window=6), clock)
    for _ in range(2000):
        clock.now += rng.choice((0.5, 1, 3))
        b.allow()
        trip = b.record(ok=rng.random() < 0.7)
        window = list(b._outcomes)
        assert b._failures == sum(not ok for ok in window)
        if trip is not None and trip.reason == "error_rate":
            assert trip.details == {"failures": window.count(False), "calls": len(window), "threshold": 0.4}


def test_spend_rate_median_sees_spend_recorded_for_other_hours_while_open():
    clock = Clock(3600 * 1000)
    b = CircuitBreaker("g", BreakerConfig(cooldown_s=60, spend_rate_k=Decimal(3), min_history_hours=3), clock)
    for _ in range(3):  # three hours of $1
        b.record(cost=Decimal(1))
        clock.now += 3600
    assert b.record(cost=Decimal("2.5")) is None  # $2.5 ≤ 3 × $1; the median is now known for this hour
    b.trip("loop", "loop")
    hour = clock.now
    for back in (2, 1):  # late records for two past hours, while open (no check runs): the median becomes $11
        clock.now = hour - back * 3600
        assert b.record(cost=Decimal(10)) is None
    clock.now = hour + 61
    assert b.allow() and b.record(ok=True) is None and b.state is BreakerState.CLOSED
    assert b.record(cost=Decimal(1)) is None  # $3.5 this hour: above 3 × $1 but not 3 × $11
    assert b.record(cost=Decimal(30)) is not None  # $33.5 > $33
