"""One conformance suite for every `BreakerWindows` (memory, SQLite, Redis), and registries on shared windows:
an account-wide burst split across processes trips the breaker no single process would trip."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from fiscus.events.guard_events import SpendRateLevel
from fiscus.guards import BreakerConfig, BreakerRegistry, BreakerState
from fiscus.guards.state import open_breaker_state
from fiscus.guards.windows import BreakerWindows, Delta, Horizon, open_breaker_windows

T0 = 1_900_000_000.0 - 1_900_000_000.0 % 3600  # the start of an hour


@pytest.fixture(params=["memory", "sqlite", "redis"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'breakers.db'}"
    return f"{request.getfixturevalue('redis_url')}?prefix={request.getfixturevalue('redis_prefix')}"


@pytest.fixture
def windows(url: str) -> Iterator[BreakerWindows]:
    opened = open_breaker_windows(url)
    yield opened
    opened.close()


def horizon(now: float, hours: int = 24, error_s: float = 60) -> Horizon:
    return Horizon.at(now, history_hours=hours, error_window_s=error_s)


def test_exchange_adds_and_reads_back(windows: BreakerWindows) -> None:
    first = windows.exchange({"global": Delta(1_500, 2, 1)}, [], horizon(T0 + 5))
    assert first["global"].hourly == {int(T0 // 3600): 1_500}
    assert sum(c for c, _ in first["global"].buckets.values()) == 2
    again = windows.exchange({"global": Delta(500, 1, 0), "agent:a": Delta(7)}, ["model:x"], horizon(T0 + 6))
    assert again["global"].hourly == {int(T0 // 3600): 2_000}
    assert sorted(again["global"].buckets.values()) == [(3, 1)]
    assert again["agent:a"].hourly == {int(T0 // 3600): 7} and again["model:x"].hourly == {}


def test_old_hours_and_buckets_fall_out(windows: BreakerWindows) -> None:
    windows.exchange({"global": Delta(100, 4, 4)}, [], horizon(T0))
    later = T0 + 3 * 3600
    found = windows.exchange({"global": Delta(200)}, [], horizon(later, hours=2, error_s=60))
    assert found["global"].hourly == {int(later // 3600): 200}  # three hours back is past a 2-hour history
    assert found["global"].buckets == {}


def test_one_probe_lease_at_a_time(windows: BreakerWindows) -> None:
    assert windows.claim_probe("global", "w1", now=T0, lease_s=60)
    assert windows.claim_probe("global", "w1", now=T0, lease_s=60)  # the holder's own again
    assert not windows.claim_probe("global", "w2", now=T0, lease_s=60)
    windows.release_probe("global", "w2")  # not w2's to release
    assert not windows.claim_probe("global", "w2", now=T0, lease_s=60)
    windows.release_probe("global", "w1")
    assert windows.claim_probe("global", "w2", now=T0, lease_s=60)


def test_clear_forgets_a_scope(windows: BreakerWindows) -> None:
    windows.exchange({"global": Delta(100, 1, 1), "agent:a": Delta(5)}, [], horizon(T0))
    windows.clear("global")
    found = windows.exchange({}, ["global", "agent:a"], horizon(T0))
    assert found["global"].hourly == {} and found["agent:a"].hourly == {int(T0 // 3600): 5}


def test_stores_share_by_url(url: str, windows: BreakerWindows) -> None:
    if url == "memory://":
        return
    other = open_breaker_windows(url)
    try:
        windows.exchange({"global": Delta(42)}, [], horizon(T0))
        assert other.exchange({}, ["global"], horizon(T0))["global"].hourly == {int(T0 // 3600): 42}
    finally:
        other.close()


def _workers(url: str, n: int, now: list[float], tmp_path: Path, events: list[object]) -> list[BreakerRegistry]:
    config = BreakerConfig(spend_rate_k=Decimal(3), min_history_hours=3, error_rate=None, cooldown_s=60)
    shared_memory = open_breaker_windows(url) if url == "memory://" else None
    shared_state = open_breaker_state(url) if url == "memory://" else None
    return [
        BreakerRegistry(
            config,
            clock=lambda: now[0],
            postmortem_dir=tmp_path / "pm",
            state=shared_state or open_breaker_state(url),
            windows=shared_memory or open_breaker_windows(url),
            refresh_s=0.5,
            on_event=events.append,
        )
        for _ in range(n)
    ]


def test_a_burst_split_across_four_workers_trips_the_account_breaker(url: str, tmp_path: Path) -> None:
    now = [T0 - 3 * 3600]
    events: list[object] = []
    workers = _workers(url, 4, now, tmp_path, events)
    for _ in range(3):  # three past hours of $1 each, spread over the workers: the median hour is $1
        for worker in workers:
            worker.record(None, cost=Decimal("0.25"))
        now[0] += 3600
        for worker in workers:
            now[0] += 0.5
            worker.sync()
    # This hour each worker spends $0.90: $3.60 in all, above 3 × $1; no worker alone is above even 1 ×.
    trips = []
    for _ in range(9):
        for worker in workers:
            now[0] += 0.2
            trips += worker.record(None, cost=Decimal("0.10"))
    assert [(t.scope, t.reason) for t in trips] == [("global", "spend_rate")]
    assert Decimal(trips[0].details["hour_spend_usd"]) > 3 and trips[0].details["median_hourly_usd"] == "1"
    now[0] += 0.5
    assert all(worker.check("anyone") is not None for worker in workers)  # open in every worker
    levels = [(e.scope, e.level) for e in events if isinstance(e, SpendRateLevel)]
    assert levels == [("global", "warning")]  # once for the fleet, not once per worker
    post = json.loads(Path(str(trips[0].postmortem_path)).read_text())
    assert post["account"]["median_hourly_usd"] == "1" and Decimal(post["account"]["hour_spend_usd"]) > 3

    # Half-open: one probe across all four, not one per worker.
    now[0] += 61
    allowed = [worker.check("anyone") is None for worker in workers]
    assert allowed.count(True) == 1
    prober = workers[allowed.index(True)]
    prober.reset("global")  # an operator resets it meanwhile: closed everywhere, figures start again
    now[0] += 0.5
    for worker in workers:
        assert worker.check("anyone") is None and worker.breaker("global").state is BreakerState.CLOSED
        assert worker.record(None, cost=Decimal("0.10")) == []
    for worker in workers:
        worker.close()


def test_without_shared_windows_processes_started_this_hour_never_trip(tmp_path: Path) -> None:
    """Twenty SDK processes started this hour: none has three past hours of its own, so none can judge the burst."""
    now = [T0]
    config = BreakerConfig(spend_rate_k=Decimal(3), min_history_hours=3, error_rate=None)
    processes = [BreakerRegistry(config, clock=lambda: now[0], postmortem_dir=None) for _ in range(20)]
    trips = [t for _ in range(10) for p in processes for t in p.record(None, cost=Decimal("1"))]
    assert trips == []


@pytest.fixture(params=["sqlite", "redis"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The windows that outlive a process (memory ones do not)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'breakers.db'}"
    return f"{request.getfixturevalue('redis_url')}?prefix={request.getfixturevalue('redis_prefix')}"


def test_processes_started_this_hour_trip_on_the_shared_history(shared_url: str, tmp_path: Path) -> None:
    url = shared_url
    now = [T0 - 3 * 3600]
    events: list[object] = []
    (past,) = _workers(url, 1, now, tmp_path, events)
    for _ in range(3):  # yesterday's fleet: $1 an hour
        past.record(None, cost=Decimal("1"))
        now[0] += 3600
    past.close()
    processes = _workers(url, 5, now, tmp_path, events)
    trips = []
    for _ in range(10):  # $1 from each: none alone is above 3 × the median hour, the five together are
        for p in processes:
            now[0] += 0.2
            trips += p.record(None, cost=Decimal("0.1"))
    assert [(t.scope, t.reason) for t in trips] == [("global", "spend_rate")]
    for p in processes:
        p.close()
