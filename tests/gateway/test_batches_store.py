"""The batch store on SQLite and PostgreSQL: a record round-trips with its reservations, settles once, and files
stay with their key."""

from __future__ import annotations

from pathlib import Path

import pytest

from fiscus.attribution import Attribution
from fiscus.batches.records import BatchGroup, BatchRecord
from fiscus.batches.store import BatchStore
from fiscus.engine.ports import Amounts, Limits, Reservation, ReserveLine
from fiscus.errors import StoreError


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BatchStore:
    url = f"sqlite:///{tmp_path}/keys.db" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    opened = BatchStore(url)
    request.addfinalizer(opened.close)
    return opened


def test_records_round_trip_and_settle(store: BatchStore) -> None:
    line = ReserveLine("day", ("b:team=growth:day:1",), Limits(nanos=10**9), Amounts(123, 45, 2), 1e9)
    group = BatchGroup("gpt-4o-mini", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "warn", Reservation("r1", (line,), 5.0),
                       {"a": (10, 40), "b": (12, 40)})  # fmt: skip
    who = Attribution(team="growth", agent="bot", task_class="nightly")
    record = BatchRecord("batch_1", "openai", "openai", "/v1/chat/completions", "vk_1", who, "background", 1.5, "0.01",
                         [group])  # fmt: skip
    store.add(record)
    back = store.get("batch_1")
    assert back is not None and back == record and not back.settled
    assert store.unsettled() == ["batch_1"]
    store.mark_settled("batch_1")
    assert store.get("batch_1").settled and store.unsettled() == []  # type: ignore[union-attr]
    with pytest.raises(StoreError):
        store.add(record)  # one record per batch
    store.own_file("file-1", "vk_1")
    store.own_file("file-1", "vk_2")  # the first owner keeps it
    assert store.file_owner("file-1") == "vk_1" and store.file_owner("file-2") is None


def test_a_bad_url_is_one_readable_error() -> None:
    with pytest.raises(StoreError, match="unsupported batch store URL"):
        BatchStore("mysql://nowhere")
