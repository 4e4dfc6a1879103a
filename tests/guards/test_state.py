"""One conformance suite for every `BreakerStateStore` (memory, SQLite, Redis), and registries sharing one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fiscus.errors import StoreError
from fiscus.guards import BreakerConfig, BreakerRegistry, BreakerState
from fiscus.guards.record import BreakerRecord
from fiscus.guards.state import (
    BreakerStateStore,
    MemoryBreakerState,
    describe,
    open_breaker_state,
    state_url_beside,
)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'breakers.db'}"
    url = request.getfixturevalue("redis_url")
    return f"{url}?prefix={request.getfixturevalue('redis_prefix')}"


@pytest.fixture
def store(state_url: str) -> Iterator[BreakerStateStore]:
    opened = open_breaker_state(state_url)
    yield opened
    opened.close()


def opened(since: float, scope: str = "agent:a", reopens: float = 60.0) -> BreakerRecord:
    return BreakerRecord(scope, "open", since, "spend_rate", "too fast", since + reopens, 1, {"k": "3"})


def test_saves_and_loads_records(store: BreakerStateStore) -> None:
    assert store.load_all() == []
    first, second = opened(100.0), opened(100.5, scope="global")
    assert store.save(first) and store.save(second)
    assert sorted(store.load_all(), key=lambda r: r.scope) == [first, second]


def test_the_newest_record_wins(store: BreakerStateStore) -> None:
    assert store.save(opened(100.0))
    closed = BreakerRecord("agent:a", "closed", 200.0, trips=1)
    assert store.save(closed)
    assert not store.save(opened(150.0))  # a slow writer's older trip does not undo the close
    assert not store.save(opened(200.0))  # nor does a tie
    assert store.load_all() == [closed]


def test_stores_share_by_url(state_url: str, store: BreakerStateStore) -> None:
    if state_url == "memory://":
        assert open_breaker_state(state_url).load_all() == []  # memory is private to its instance
        return
    other = open_breaker_state(state_url)
    try:
        store.save(opened(100.0))
        assert other.load_all() == [opened(100.0)]
    finally:
        other.close()


def test_registries_on_one_store_agree(store: BreakerStateStore) -> None:
    """Two workers: a trip in one refuses calls in the other at its next refresh; a close travels back."""
    now = [1_000_000.0]
    config = BreakerConfig(cooldown_s=30)
    one = BreakerRegistry(config, clock=lambda: now[0], postmortem_dir=None, state=store, refresh_s=0.5)
    two = BreakerRegistry(config, clock=lambda: now[0], postmortem_dir=None, state=store, refresh_s=0.5)
    assert one.check("a") is None and two.check("a") is None
    one.trip("a", "budget_exhausted", "team budget exhausted")
    assert two.check("a") is None  # within the refresh interval, the cached view
    now[0] += 0.5
    refused = two.check("a")
    assert refused is not None and refused.scope == "agent:a" and two.check("b") is None
    assert refused.last_trip is not None and refused.last_trip.message == "team budget exhausted"
    assert refused.last_trip.reopens_at == 1_000_030.0

    now[0] += 30  # cooldown over: each worker lets its probe through; the one in `two` succeeds
    assert two.check("a") is None
    two.record("a", ok=True)
    assert two.breaker("agent:a").state is BreakerState.CLOSED
    assert one.breaker("agent:a").state is BreakerState.HALF_OPEN
    now[0] += 0.5
    assert one.check("a") is None and one.breaker("agent:a").state is BreakerState.CLOSED
    assert [r.state for r in store.load_all()] == ["closed"]


def test_error_rate_trip_in_one_worker_is_shared(store: BreakerStateStore) -> None:
    now = [2_000_000.0]
    config = BreakerConfig(error_rate=0.5, min_calls=2, error_window=2)
    one = BreakerRegistry(config, clock=lambda: now[0], postmortem_dir=None, state=store, refresh_s=1)
    two = BreakerRegistry(config, clock=lambda: now[0], postmortem_dir=None, state=store, refresh_s=1)
    one.record(None, ok=False, provider="openai", model="gpt-4o")
    trips = one.record(None, ok=False, provider="openai", model="gpt-4o")
    assert [(t.scope, t.reason) for t in trips] == [("model:openai/gpt-4o", "error_rate")]
    assert two.check("anyone", provider="openai", model="gpt-4o") is not None  # first check reads the store
    assert two.check("anyone", provider="openai", model="gpt-4o-mini") is None  # another model's calls go out
    assert {s["scope"]: s["state"] for s in two.snapshot()}["model:openai/gpt-4o"] == "open"


class Broken(BreakerStateStore):
    def save(self, record: BreakerRecord) -> bool:
        raise StoreError("redis at nowhere: connection refused")

    def load_all(self) -> list[BreakerRecord]:
        raise StoreError("redis at nowhere: connection refused")


def test_a_failing_store_leaves_breakers_working_locally(caplog: pytest.LogCaptureFixture) -> None:
    registry = BreakerRegistry(BreakerConfig(), postmortem_dir=None, state=Broken(), refresh_s=0)
    assert registry.check("a") is None
    registry.trip("a", "loop", "ping-pong")
    assert registry.check("a") is not None
    warnings = [r for r in caplog.records if "breaker state unavailable" in r.getMessage()]
    assert len(warnings) == 1  # one warning per outage


def test_describe_derives_half_open_from_the_cooldown_end() -> None:
    rows = describe([opened(100.0), opened(100.0, scope="global", reopens=1000)], now=200.0)
    assert [(r["scope"], r["state"]) for r in rows] == [("global", "open"), ("agent:a", "half_open")]


def test_urls() -> None:
    assert state_url_beside("sqlite:///.fiscus/budgets.db") == "sqlite:///.fiscus/breakers.db"
    assert state_url_beside("sqlite:////srv/f/b.db") == "sqlite:////srv/f/breakers.db"
    assert state_url_beside("redis://h:6379/0?prefix=t") == "redis://h:6379/0?prefix=t"
    assert state_url_beside("memory://") == "memory://"
    assert isinstance(open_breaker_state("memory://"), MemoryBreakerState)
    with pytest.raises(StoreError, match="unknown scheme"):
        open_breaker_state("etcd://x")
    with pytest.raises(StoreError, match="sqlite:///relative"):
        open_breaker_state("sqlite://x.db")


def test_unreadable_record_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="unknown state"):
        BreakerRecord.from_json('{"scope": "g", "state": "ajar", "since": 1}')
    with pytest.raises(StoreError, match="unreadable"):
        BreakerRecord.from_json("{")


def test_public_names_and_no_driver_until_a_url_asks() -> None:
    import subprocess
    import sys

    import fiscus.guards

    assert {"BreakerStateStore", "BreakerRecord", "MemoryBreakerState", "open_breaker_state"} <= set(
        fiscus.guards.__all__
    )
    probe = "import sys, fiscus.guards, fiscus.config; print(sorted({'redis', 'sqlite3'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
