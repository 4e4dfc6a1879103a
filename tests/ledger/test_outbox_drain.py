"""The writer moves a durable store's outbox into the ledger: on start, on a kick, on flush; once per id."""

from __future__ import annotations

from pathlib import Path

import orjson

from fiscus.ledger import LedgerWriter, open_ledger
from fiscus.stores import Amounts, Limits, Reservation, ReserveLine, SqliteStore

from .conftest import EventFactory

NOW = 1_772_366_400.0  # 2026-03-01 12:00 UTC


def settle_with_record(store: SqliteStore, event_id: str, record: bytes) -> None:
    line = ReserveLine("b", ("k",), Limits(), Amounts(1), expires_at=NOW + 86400)
    reservation = store.reserve(event_id, (line,), now=NOW, lease_seconds=60)
    assert isinstance(reservation, Reservation)
    store.settle(reservation, Amounts(1), now=NOW, record=record)


def test_records_left_in_the_outbox_are_drained_when_a_writer_starts(tmp_path: Path, make_event: EventFactory) -> None:
    store = SqliteStore(tmp_path / "budgets.db")
    events = [make_event(team="growth") for _ in range(7)]
    for event in events:  # settled, then the process died before any ledger write
        settle_with_record(store, event.id, orjson.dumps(event.to_dict()))
    ledger = open_ledger(f"sqlite:///{tmp_path}/ledger.db")
    writer = LedgerWriter(ledger, outbox=store, spill_path=tmp_path / "spill.jsonl")
    assert writer.flush(timeout=5)
    writer.close()
    assert sorted(e.id for e in ledger.events()) == sorted(e.id for e in events)
    assert ledger.get(events[0].id) == events[0]
    assert store.outbox(10) == [] and writer.drained == 7
    ledger.close()
    store.close()


def test_a_record_drained_twice_is_kept_once(tmp_path: Path, make_event: EventFactory) -> None:
    """Two workers may drain the same entries; the ledger skips ids it has."""
    store = SqliteStore(tmp_path / "budgets.db")
    event = make_event()
    record = orjson.dumps(event.to_dict())
    settle_with_record(store, event.id, record)
    ledger = open_ledger(f"sqlite:///{tmp_path}/ledger.db")
    ledger.append([event])  # the other worker got there first, and died before deleting the entry
    writer = LedgerWriter(ledger, outbox=store, spill_path=tmp_path / "spill.jsonl")
    writer.kick()
    assert writer.flush(timeout=5)
    writer.close()
    assert [e.id for e in ledger.events()] == [event.id]
    assert store.outbox(10) == [] and writer.drained == 0
    ledger.close()
    store.close()
