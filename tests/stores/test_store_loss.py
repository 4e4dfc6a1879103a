"""Loss detection on every store: a guarded store without its marker refuses to reserve (StoreLost) and changes
nothing; settles still land and keep their ids; restore puts rebuilt counters back once; an unguarded store
starts afresh quietly. SQLite notices its file deleted or its counters emptied, Redis its keys deleted."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fiscus.errors import StoreLost
from fiscus.stores import Amounts, BudgetStore, Limits, Reservation, ReserveLine, open_store
from fiscus.stores.base import new_epoch
from tests.stores.conftest import url_for

T0 = 1_800_000_000.0
LEASE = 30.0
LINE = (ReserveLine("b", ("k",), Limits(nanos=1000), Amounts(100), expires_at=T0 + 86400),)


@pytest.fixture
def guarded(store_url: str) -> Iterator[BudgetStore]:
    opened = open_store(store_url, guarded=True)
    yield opened
    opened.close()


def test_a_fresh_guarded_store_is_lost_until_restored(guarded: BudgetStore) -> None:
    assert guarded.marker() is None
    with pytest.raises(StoreLost):
        guarded.reserve("r1", LINE, now=T0, lease_seconds=LEASE)
    assert guarded.counters(("k",), now=T0)["k"].reserved == Amounts()  # nothing was reserved
    assert guarded.claim_loss(now=T0) is True
    assert guarded.claim_loss(now=T0) is False  # noticed once
    assert guarded.marker().startswith("L:")
    with pytest.raises(StoreLost):
        guarded.reserve("r1", LINE, now=T0, lease_seconds=LEASE)
    epoch = new_epoch()
    assert guarded.restore({"k": (Amounts(700, 7, 1), T0 + 86400)}, epoch=epoch, now=T0) is True
    assert guarded.restore({"k": (Amounts(700, 7, 1), T0 + 86400)}, epoch=new_epoch(), now=T0) is False
    assert guarded.marker() is not None and not guarded.marker().startswith("L:")
    assert guarded.counters(("k",), now=T0)["k"].spent == Amounts(700, 7, 1)
    assert isinstance(guarded.reserve("r1", LINE, now=T0, lease_seconds=LEASE), Reservation)
    line = (ReserveLine("b", ("k",), Limits(nanos=1000), Amounts(250), expires_at=T0 + 86400),)
    assert not isinstance(guarded.reserve("r2", line, now=T0, lease_seconds=LEASE), Reservation)  # 700+100+250


def test_settles_during_a_loss_land_and_are_kept_apart(guarded: BudgetStore) -> None:
    guarded.restore({}, epoch=new_epoch(), now=T0)
    held = guarded.reserve("r1", LINE, now=T0, lease_seconds=LEASE)
    assert isinstance(held, Reservation)
    lose(guarded)
    guarded.settle(held, Amounts(60, 6, 1), now=T0, record=b"r1")  # a call running across the loss
    assert guarded.lost_ids() == {"r1"}
    assert guarded.counters(("k",), now=T0)["k"].spent == Amounts(60, 6, 1)
    assert guarded.restore({"k": (Amounts(40), T0 + 86400)}, epoch=new_epoch(), now=T0) is True
    assert guarded.counters(("k",), now=T0)["k"].spent == Amounts(100, 6, 1)  # restored + settled since
    assert guarded.lost_ids() == set()


def test_an_unguarded_store_starts_afresh(store: BudgetStore) -> None:
    assert isinstance(store.reserve("r1", LINE, now=T0, lease_seconds=LEASE), Reservation)
    assert store.marker() is not None


def test_the_async_reserve_of_a_lost_store_raises_too(guarded: BudgetStore) -> None:
    async def run() -> None:
        with pytest.raises(StoreLost):
            await guarded.areserve("a1", LINE, now=T0, lease_seconds=LEASE)
        guarded.restore({}, epoch=new_epoch(), now=T0)
        assert isinstance(await guarded.areserve("a1", LINE, now=T0, lease_seconds=LEASE), Reservation)
        await guarded.aclose()

    asyncio.run(run())


def lose(store: BudgetStore) -> None:
    """What losing the state does to each backend, from outside the store."""
    kind = type(store).__name__
    if kind == "MemoryStore":
        store._marker, store._intact = None, False  # type: ignore[attr-defined]  # as a restarted process finds it
    elif kind == "SqliteStore":
        import sqlite3

        with sqlite3.connect(store._path) as db:  # type: ignore[attr-defined]
            db.execute("DELETE FROM fiscus_counters")
    else:
        client = store._client  # type: ignore[attr-defined]
        for key in client.scan_iter(match=f"*{store._leases.split('}')[0][1:]}*"):  # type: ignore[attr-defined]
            client.delete(key)


def test_sqlite_notices_its_file_deleted_under_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fiscus.stores.sqlite.FILE_CHECK_S", 0.0)
    path = tmp_path / "budgets.db"
    store = open_store(f"sqlite:///{path}", guarded=True)
    store.restore({}, epoch=new_epoch(), now=T0)
    held = store.reserve("r1", LINE, now=T0, lease_seconds=LEASE)
    assert isinstance(held, Reservation)
    store.settle(held, Amounts(60), now=T0, record=b"the call r1")  # not yet moved to the ledger
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{path}{suffix}").exists():
            os.remove(f"{path}{suffix}")
    with pytest.raises(StoreLost):
        store.reserve("r2", LINE, now=T0, lease_seconds=LEASE)
    assert path.exists()  # the store opened the file now at its path
    assert [(e.id, e.record) for e in store.outbox(10)] == [("r1", b"the call r1")]  # the record came along
    store.close()


@pytest.mark.redis
def test_redis_notices_its_keys_deleted(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    store = open_store(url_for("redis", request, tmp_path), guarded=True)
    store.restore({}, epoch=new_epoch(), now=T0)
    assert isinstance(store.reserve("r1", LINE, now=T0, lease_seconds=LEASE), Reservation)
    lose(store)
    with pytest.raises(StoreLost):
        store.reserve("r2", LINE, now=T0, lease_seconds=LEASE)
    store.close()


def test_on_store_loss_is_validated_with_a_readable_error(tmp_path: Path) -> None:
    from fiscus.config import load_config
    from fiscus.errors import ConfigError

    config = tmp_path / "fiscus.yaml"
    config.write_text("store: {on_store_loss: fail_sometimes}\n", encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"store\.on_store_loss: Input should be 'rebuild', 'fail_closed' or 'fail_open'"
    ):
        load_config(config)
    config.write_text("store: {on_store_loss: fail_closed, timeout_s: 0.5}\n", encoding="utf-8")
    loaded = load_config(config)
    assert loaded.store.on_store_loss == "fail_closed"
    assert load_config(None).store.on_store_loss == "rebuild"  # the default
    assert loaded.store.options("redis://127.0.0.1:6379/0")["timeout_s"] == 0.5
