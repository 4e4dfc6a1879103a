"""Losing the budget store never resets a budget: an agent spends its $0.05 day budget through a gateway of two
workers, the store's data is lost (the SQLite file deleted under the running workers; FLUSHALL on a private
redis-server), and the same day's calls are answered per `store.on_store_loss` — rebuild: refused (503 while
rebuilding, then the budget's own 429) with the ledger's day sum unchanged and the rebuilt counter equal to it to
the nano-dollar; fail_closed: 503 with retry-after until `fiscus budgets rebuild`, then 429; fail_open: admitted.
Each loss is announced once across the workers. The same on the shared Redis with a PostgreSQL ledger and three
workers, the Redis state lost by deleting the test's own keys. A Redis that goes down is answered at once and
recovered from without a restart, rebuilt when it comes back empty."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from fiscus.emulator import EmulatorConfig, run_in_thread
from fiscus.engine.plan import hold_key
from fiscus.engine.ports import Amounts
from fiscus.events.cost_event import CallStatus
from fiscus.ledger import open_ledger
from fiscus.money import to_nanos
from fiscus.stores import open_store
from fiscus.stores.rebuild_marks import ANNOUNCED_TAG
from tests.conftest import delete_redis_keys
from tests.scenarios.store_loss_world import DAY_LIMIT, Gateway, PrivateRedis, wait_for

COUNTER = "b:agent-day|day:{day}"


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    with run_in_thread(EmulatorConfig()) as url:
        yield url


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    yield server
    server.stop()


def store_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/budgets.db"
    return request.getfixturevalue("private_redis").url  # type: ignore[no-any-return]


def lose(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if kind == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            path = Path(f"{tmp_path}/budgets.db{suffix}")
            if path.exists():
                os.remove(path)
    else:
        request.getfixturevalue("private_redis").flushall()
    time.sleep(0.4)  # past the SQLite store's file check: the next call meets the loss


def counter_nanos(url: str) -> int:
    store = open_store(url)
    try:
        key = COUNTER.format(day=datetime.now(UTC).date().isoformat())
        return store.counters((key,), now=time.time())[key].spent.nanos
    finally:
        store.close()


def ledger_nanos(gateway: Gateway) -> int:
    with open_ledger(gateway.loaded.ledger) as ledger:
        return sum(to_nanos(e.cost.total) for e in ledger.events() if e.status is CallStatus.OK)


def assert_unavailable(reply: object, retry_after: str) -> None:
    assert reply.status_code == 503, reply.text  # type: ignore[attr-defined]
    assert reply.headers["retry-after"] == retry_after  # type: ignore[attr-defined]
    error = reply.json()["error"]  # type: ignore[attr-defined]
    assert "budget store lost its state" in error["message"] and error["type"]


KINDS = ["sqlite", pytest.param("redis", marks=pytest.mark.redis)]


@pytest.mark.parametrize("kind", KINDS)
def test_a_lost_store_is_rebuilt_from_the_ledger_and_the_day_budget_holds(
    kind: str, tmp_path: Path, emulator: str, request: pytest.FixtureRequest
) -> None:
    url = store_url(kind, tmp_path, request)
    gateway = Gateway(tmp_path, emulator, url, "rebuild")
    try:
        served = gateway.spend_the_day()
        wait_for(served, gateway)
        spent = gateway.ledger_spent()
        assert 0 < spent <= DAY_LIMIT
        lose(kind, tmp_path, request)
        started = time.monotonic()
        statuses = [gateway.call(100 + n).status_code for n in range(20)]
        assert set(statuses) <= {429, 503}, statuses  # not one call served on the lost budget
        assert statuses[-1] == 429  # the budget's own answer once rebuilt
        assert time.monotonic() - started < 10
        time.sleep(0.5)
        assert gateway.ledger_ok_calls() == served
        assert gateway.ledger_spent() == spent <= DAY_LIMIT  # no day budget exceeded
        assert counter_nanos(url) == ledger_nanos(gateway)  # the rebuilt counter is the ledger's sum exactly
        assert gateway.announced() == 1  # once across both workers
        print(f"{kind}: {served} calls, ${spent} of ${DAY_LIMIT}; after the loss {statuses.count(429)} x 429")
    finally:
        gateway.stop()


@pytest.mark.parametrize("kind", KINDS)
def test_fail_closed_refuses_until_an_operator_rebuilds(
    kind: str, tmp_path: Path, emulator: str, request: pytest.FixtureRequest
) -> None:
    url = store_url(kind, tmp_path, request)
    gateway = Gateway(tmp_path, emulator, url, "fail_closed")
    try:
        served = gateway.spend_the_day()
        wait_for(served, gateway)
        spent = gateway.ledger_spent()
        lose(kind, tmp_path, request)
        for n in range(6):
            started = time.monotonic()
            assert_unavailable(gateway.call(200 + n), "5")
            assert time.monotonic() - started < 1.0  # answered within a second
        assert "rebuilt 1 counters" in gateway.rebuild()
        time.sleep(1.2)  # each worker looks at the store's marker once a second
        assert [gateway.call(300 + n).status_code for n in range(4)] == [429] * 4
        assert gateway.ledger_spent() == spent <= DAY_LIMIT
        assert counter_nanos(url) == ledger_nanos(gateway)
        assert gateway.announced() == 1
    finally:
        gateway.stop()


@pytest.mark.parametrize("kind", KINDS)
def test_fail_open_admits_on_a_budget_counted_from_zero(
    kind: str, tmp_path: Path, emulator: str, request: pytest.FixtureRequest
) -> None:
    url = store_url(kind, tmp_path, request)
    gateway = Gateway(tmp_path, emulator, url, "fail_open")
    try:
        served = gateway.spend_the_day()
        wait_for(served, gateway)
        spent = gateway.ledger_spent()
        lose(kind, tmp_path, request)
        assert [gateway.call(400 + n).status_code for n in range(3)] == [200] * 3  # what fail_open chooses
        wait_for(served + 3, gateway)
        assert gateway.ledger_spent() > spent
        assert gateway.announced() == 1
    finally:
        gateway.stop()


@pytest.mark.redis
def test_a_redis_that_goes_down_is_refused_fast_and_rebuilt_when_it_comes_back_empty(
    tmp_path: Path, emulator: str, private_redis: PrivateRedis
) -> None:
    gateway = Gateway(tmp_path, emulator, private_redis.url, "rebuild")
    try:
        assert [gateway.call(n).status_code for n in range(3)] == [200] * 3
        wait_for(3, gateway)
        private_redis.kill()
        for n in range(6):
            started = time.monotonic()
            reply = gateway.call(10 + n)
            assert reply.status_code == 503, reply.text
            assert reply.headers["retry-after"] == "1"
            assert "budget store cannot be reached" in reply.json()["error"]["message"]
            assert time.monotonic() - started < 1.5  # no hang beyond the store's 1 s timeout
        assert gateway.proc.poll() is None  # no crash
        private_redis.start()  # back, and empty
        time.sleep(1.1)  # past the down state's retry
        served = 3 + gateway.spend_the_day()  # recovered without a restart; the day's first 3 calls still count
        wait_for(served, gateway)
        assert gateway.ledger_spent() <= DAY_LIMIT
        assert counter_nanos(private_redis.url) == ledger_nanos(gateway)
        log = gateway.log.read_text(errors="replace")
        assert log.count("cannot be reached") >= 1 and "answers again" in log
        assert gateway.announced() == 1  # it came back empty: a loss, rebuilt
    finally:
        gateway.stop()


@pytest.mark.redis
@pytest.mark.postgres
def test_a_shared_redis_that_lost_its_keys_is_rebuilt_from_a_postgres_ledger_across_workers(
    tmp_path: Path, emulator: str, redis_url: str, redis_prefix: str, postgres_url: str
) -> None:
    """Three workers on the shared Redis (this test's own key prefix) and a PostgreSQL ledger: the prefix's keys
    deleted under the running workers (as an emptied Redis, without touching anyone else's keys) are rebuilt from
    PostgreSQL before anything is admitted, by one worker, and every worker then refuses on the day budget."""
    url = f"{redis_url}?prefix={redis_prefix}"
    gateway = Gateway(tmp_path, emulator, url, "rebuild", workers=3, ledger=postgres_url)
    try:
        served = gateway.spend_the_day(fresh=True)
        assert served == 8  # $0.0052 a call; a ninth one's worst case would not fit the $0.05 left
        wait_for(served, gateway)
        spent = gateway.ledger_spent()
        assert spent == Decimal("0.0416") <= DAY_LIMIT
        assert counter_nanos(url) == ledger_nanos(gateway) == 41_600_000
        client = redis.Redis.from_url(redis_url)
        try:
            assert client.exists(f"{{{redis_prefix}}}:v2:epoch")
        finally:
            client.close()
        delete_redis_keys(redis_url, redis_prefix)  # this test's keys only: the store's state is gone
        with ThreadPoolExecutor(4) as pool:
            during = list(pool.map(gateway.call_fresh, range(100, 132)))
        statuses = [reply.status_code for reply in during]
        assert set(statuses) <= {429, 503}, statuses  # not one call served on the lost budget
        for reply in during:
            if reply.status_code == 503:
                assert_unavailable(reply, "1")
        after = [gateway.call_fresh(200 + n).status_code for n in range(9)]
        assert after == [429] * 9  # every worker refuses on the rebuilt day budget
        time.sleep(0.5)
        assert gateway.ledger_ok_calls() == served
        assert gateway.ledger_spent() == spent  # no day budget exceeded
        key = COUNTER.format(day=datetime.now(UTC).date().isoformat())
        store = open_store(url)
        try:
            counters = store.counters((key, hold_key(key)), now=time.time())
        finally:
            store.close()
        assert counters[key].spent.nanos == counters[hold_key(key)].spent.nanos == ledger_nanos(gateway) == 41_600_000
        assert counters[key].spent.requests == served
        assert counters[key].reserved == Amounts()  # nothing left held
        assert gateway.announced() == 1  # once across the three workers
        with open_ledger(gateway.loaded.ledger) as ledger:
            announcing = [e.tags[ANNOUNCED_TAG] for e in ledger.events() if ANNOUNCED_TAG in e.tags]
        day = datetime.now(UTC).date().isoformat()
        # the 80 % warning and the exhaustion announced once, by the call that first found them, not again
        assert announcing == [f"f:b:agent-day|day:{day}|0.8:warn f:b:agent-day|day:{day}|exhausted"]
        assert "1 counters rebuilt from the ledger ($0.0416 spent" in gateway.log.read_text(errors="replace")
        print(f"redis+postgres: {served} calls, ${spent}; after the loss {statuses.count(503)} x 503, then 429s")
    finally:
        gateway.stop()
