"""A spend-rate breaker's level as an entry of the alert table: read from the shared state by any process, since
the first process to see it, cleared by the next hour, and shown by `AlertWatch` without a second announcement."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from fiscus.alerts.breaker_signals import SIGNAL, breaker_signals
from fiscus.events.guard_events import SpendRateLevel
from fiscus.guards import BreakerConfig, BreakerRegistry
from fiscus.guards.state import open_breaker_state
from fiscus.guards.windows import Delta, Horizon, open_breaker_windows
from fiscus.policy.load import parse_policy

HOUR = 3600.0
T0 = 1_800_000_000.0 // HOUR * HOUR + 60  # a minute into an hour


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _registry(url: str, clock: Clock, heard: list[object]) -> BreakerRegistry:
    config = BreakerConfig(spend_rate_k=Decimal(10), min_history_hours=3, error_rate=None)
    return BreakerRegistry(
        config,
        clock=clock,
        postmortem_dir=None,
        state=open_breaker_state(url),
        windows=open_breaker_windows(url),
        refresh_s=0.0,
        on_event=heard.append,
    )


def test_a_level_stands_in_every_process_since_it_was_reached_and_clears_with_the_hour(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'breakers.db'}"
    seed = open_breaker_windows(url)
    for hours_ago in (1, 2, 3):  # $1 an hour before: the median hour
        at = Horizon.at(T0 - hours_ago * HOUR, history_hours=168, error_window_s=120)
        seed.exchange({"global": Delta(10**9), "agent:scout": Delta(10**9)}, [], at)
    seed.close()
    policy = parse_policy(
        {"version": 1, "owners": {"default": "ops@example.com", "agent": {"scout": "sam@example.com"}}}
    )
    clock, heard = Clock(), []  # type: ignore[var-annotated]
    one, two = _registry(url, clock, heard), _registry(url, clock, heard)
    moment = datetime.fromtimestamp(T0, UTC)
    assert breaker_signals(two, policy, moment) == []
    one.record("scout", cost=Decimal("1.5"))
    clock.now += 30
    reached = clock.now
    two.record("scout", cost=Decimal("0.75"))  # $2.25 this hour across both: 2.25 × the median
    clock.now += 30
    moment = datetime.fromtimestamp(clock.now, UTC)
    seen = [breaker_signals(r, policy, moment) for r in (one, two)]
    assert [[(a.signal, a.level, a.subject, a.value, a.owner) for a in got] for got in seen] == [
        [
            (SIGNAL, "warning", (("breaker", "global"),), Decimal("2.25"), "ops@example.com"),
            (SIGNAL, "warning", (("breaker", "agent:scout"), ("agent", "scout")), Decimal("2.25"), "sam@example.com"),
        ]
    ] * 2
    for alert in seen[0]:
        assert alert.detail["since"] == datetime.fromtimestamp(reached, UTC).isoformat()
        assert (alert.detail["spend_usd"], alert.detail["baseline_usd"]) == ("2.25", "1")
    announced = [e for e in heard if isinstance(e, SpendRateLevel)]
    assert sorted(e.scope for e in announced) == ["agent:scout", "global"]  # once each, by the process that saw it

    clock.now = T0 - 60 + HOUR  # the next hour: nothing spent in it yet
    assert breaker_signals(one, policy, datetime.fromtimestamp(clock.now, UTC)) == []
    one.close()
    two.close()
