"""`LedgerWriter`: batches in the background, retries, spills when the ledger stays down, loses nothing."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path

import pytest

from fiscus.errors import StoreError
from fiscus.events.cost_event import CostEvent
from fiscus.events.outcome_event import OutcomeRecorded
from fiscus.events.policy_event import PolicyEvent
from fiscus.ledger import Ledger, LedgerWriter, SpendQuery, SpendRow, open_ledger
from fiscus.ledger.chain import ChainedRow, ChainHead

from .conftest import EventFactory


class FlakyLedger(Ledger):
    """Wraps a real ledger; fails `append` while `down` is set or for the first `failures` calls."""

    def __init__(self, inner: Ledger, *, failures: int = 0) -> None:
        self.inner = inner
        self.url = inner.url
        self.failures = failures
        self.down = threading.Event()
        self.calls = 0

    def append(self, events: Sequence[CostEvent]) -> int:
        self.calls += 1
        if self.down.is_set() or self.calls <= self.failures:
            raise StoreError("ledger unreachable (test)")
        return self.inner.append(events)

    def record_outcomes(self, records: Sequence[OutcomeRecorded]) -> int:
        if self.down.is_set():
            raise StoreError("ledger unreachable (test)")
        return self.inner.record_outcomes(records)

    def outcomes(self, sessions: Iterable[str]) -> dict[str, str]:
        return self.inner.outcomes(sessions)

    def get(self, event_id: str) -> CostEvent | None:
        return self.inner.get(event_id)

    def events(
        self, *, since: datetime | None = None, until: datetime | None = None, where: Mapping[str, str] | None = None
    ) -> Iterator[CostEvent]:
        return self.inner.events(since=since, until=until, where=where)

    def spend(self, query: SpendQuery, *, scan: bool = False) -> list[SpendRow]:
        return self.inner.spend(query, scan=scan)

    def chain_heads(self) -> list[ChainHead]:
        return self.inner.chain_heads()

    def chained_rows(self, table: str) -> Iterator[ChainedRow]:
        return self.inner.chained_rows(table)

    def record_policy(self, event: PolicyEvent) -> bool:
        return self.inner.record_policy(event)

    def policy_events(self, *, since: datetime | None = None, until: datetime | None = None) -> list[PolicyEvent]:
        return self.inner.policy_events(since=since, until=until)

    def schema_version(self) -> int:
        return self.inner.schema_version()


@pytest.fixture
def sqlite_ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = open_ledger(f"sqlite:///{tmp_path}/ledger.db")
    yield ledger
    ledger.close()


def _count(ledger: Ledger) -> int:
    rows = ledger.spend(SpendQuery())
    return rows[0].requests if rows else 0


def test_close_writes_everything_submitted(sqlite_ledger: Ledger, make_event: EventFactory, tmp_path: Path) -> None:
    writer = LedgerWriter(sqlite_ledger, batch_size=64, flush_interval=0.01, spill_path=tmp_path / "spill.jsonl")
    events = [make_event() for _ in range(1000)]
    for event in events:
        writer.submit(event)
    writer.close()
    assert writer.written == 1000
    assert _count(sqlite_ledger) == 1000
    assert not (tmp_path / "spill.jsonl").exists()
    with pytest.raises(StoreError, match="closed"):
        writer.submit(make_event())
    writer.close()  # a second close is harmless


def test_flush_waits_for_earlier_events(sqlite_ledger: Ledger, make_event: EventFactory, tmp_path: Path) -> None:
    with LedgerWriter(sqlite_ledger, flush_interval=5.0, spill_path=tmp_path / "s.jsonl") as writer:
        for _ in range(10):
            writer.submit(make_event())
        assert writer.flush(timeout=5)  # well before the 5 s interval would have written them
        assert _count(sqlite_ledger) == 10


def test_submitting_from_many_threads(sqlite_ledger: Ledger, make_event: EventFactory, tmp_path: Path) -> None:
    events = [make_event() for _ in range(800)]
    with LedgerWriter(sqlite_ledger, batch_size=50, spill_path=tmp_path / "s.jsonl") as writer:
        threads = [threading.Thread(target=lambda c=c: [writer.submit(e) for e in c]) for c in
                   (events[i::4] for i in range(4))]  # fmt: skip
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert _count(sqlite_ledger) == 800


def test_failed_batches_are_retried_not_dropped(
    sqlite_ledger: Ledger, make_event: EventFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = FlakyLedger(sqlite_ledger, failures=3)
    with caplog.at_level(logging.WARNING, logger="fiscus.ledger"):
        writer = LedgerWriter(flaky, retry_initial=0.001, spill_path=tmp_path / "s.jsonl")
        for _ in range(20):
            writer.submit(make_event())
        assert writer.flush(timeout=5)
        writer.close()
    assert _count(sqlite_ledger) == 20
    assert flaky.calls >= 4
    assert any("retrying" in r.message for r in caplog.records)


def test_spill_when_the_ledger_stays_down_then_reingest(
    sqlite_ledger: Ledger, make_event: EventFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spill = tmp_path / "spill.jsonl"
    flaky = FlakyLedger(sqlite_ledger)
    flaky.down.set()
    events = [make_event() for _ in range(30)]
    with caplog.at_level(logging.WARNING, logger="fiscus.ledger"):
        writer = LedgerWriter(flaky, batch_size=10, max_pending=10, retry_initial=0.001, spill_path=spill)
        for event in events[:25]:
            writer.submit(event)
        assert writer.flush(timeout=5)  # the memory bound was passed: spilled, not held forever
        assert writer.spilled == 25
        for event in events[25:]:
            writer.submit(event)
        writer.close(timeout=0.05)  # still down at close: the rest is spilled too
    assert writer.spilled == 30
    assert _count(sqlite_ledger) == 0
    assert len(spill.read_text().splitlines()) == 30
    assert any("spilled" in r.message for r in caplog.records if r.levelno == logging.ERROR)

    flaky.down.clear()
    with LedgerWriter(flaky, spill_path=spill) as again:  # the next start takes the spill back
        assert again.flush(timeout=5)
    assert not spill.exists()
    assert sorted(e.id for e in sqlite_ledger.events()) == sorted(e.id for e in events)
    assert sqlite_ledger.get(events[0].id) == events[0]


def test_spill_path_defaults_beside_a_sqlite_ledger(sqlite_ledger: Ledger) -> None:
    writer = LedgerWriter(sqlite_ledger)
    writer.close()
    assert writer.spill_path == Path(f"{sqlite_ledger.path}.spill.jsonl")  # type: ignore[attr-defined]


def test_rejects_what_is_not_an_event(sqlite_ledger: Ledger, tmp_path: Path) -> None:
    with LedgerWriter(sqlite_ledger, spill_path=tmp_path / "s.jsonl") as writer, pytest.raises(TypeError):
        writer.submit({"id": "x"})  # type: ignore[arg-type]


def test_interpreter_exit_flushes_a_writer_never_closed(tmp_path: Path) -> None:
    db = tmp_path / "exit.db"
    script = f"""
from decimal import Decimal
from fiscus.events.cost_event import CostEvent
from fiscus.events.outcome_event import OutcomeRecorded
from fiscus.ledger import LedgerWriter, open_ledger
from fiscus.pricing.cost import Cost
from fiscus.usage.model import Usage
writer = LedgerWriter(open_ledger({f"sqlite:///{db}"!r}), flush_interval=60)
for i in range(300):
    writer.submit(CostEvent(provider="openai", requested_model="m", served_model="m", usage=Usage(),
                            cost=Cost(input=Decimal("0.01"))))
"""  # no flush, no close: the atexit hook must write all 300
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    with open_ledger(f"sqlite:///{db}") as ledger:
        (row,) = ledger.spend(SpendQuery())
    assert row.requests == 300
    assert row.total_usd == 3


def test_an_unwritable_spill_file_is_reported_not_silent(
    sqlite_ledger: Ledger, make_event: EventFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = FlakyLedger(sqlite_ledger)
    flaky.down.set()
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with caplog.at_level(logging.ERROR, logger="fiscus.ledger"):
        writer = LedgerWriter(flaky, spill_path=blocker / "spill.jsonl", close_timeout=0.01, retry_initial=0.001)
        for _ in range(5):
            writer.submit(make_event())
        writer.close()
    assert writer.lost == 5 and writer.spilled == 0
    assert any("neither stored nor spilled" in r.getMessage() for r in caplog.records)


def test_outcomes_ride_with_events_and_survive_a_spill(
    sqlite_ledger: Ledger, make_event: EventFactory, tmp_path: Path
) -> None:
    spill = tmp_path / "spill.jsonl"
    flaky = FlakyLedger(sqlite_ledger)
    flaky.down.set()
    writer = LedgerWriter(flaky, retry_initial=0.001, spill_path=spill)
    writer.submit(make_event(session="s-1"))
    writer.submit(OutcomeRecorded(session="s-1", outcome="resolved", source="sdk"))
    writer.close(timeout=0.05)
    assert writer.spilled == 2 and sqlite_ledger.outcomes(["s-1"]) == {}
    flaky.down.clear()
    with LedgerWriter(flaky, spill_path=spill) as again:
        assert again.flush(timeout=5)
        again.submit(OutcomeRecorded(session="s-2", outcome="failed", source="admin"))
    assert sqlite_ledger.outcomes(["s-1", "s-2"]) == {"s-1": "resolved", "s-2": "failed"}
    assert _count(sqlite_ledger) == 1
