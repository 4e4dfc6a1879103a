"""`LedgerWriter`: callers hand events to a queue and go on; a daemon thread writes them in batches.

It takes `CostEvent`s and session outcomes (`OutcomeRecorded`) alike; each kind goes to its own table.

Nothing is lost on a clean stop: `close()` (also run at interpreter exit) writes everything queued. A failed
batch is retried with exponential backoff; while the ledger stays down events wait in memory, and past
`max_pending` (or when closing with the ledger still down) they are spilled to a JSONL file, which the next
writer on the same ledger re-ingests when it starts.

With an `outbox` (a durable budget store), settled calls are not handed over in memory at all: the store keeps
each call's record in the same atomic step as its counters, and this writer moves them to the ledger in batches
(on start, whenever `kick()` says there is more, on `flush()` and `close()`) and only then removes them from the
outbox. A crash between the two leaves them in the outbox; the ledger skips ids it has, so none counts twice.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from pathlib import Path

import orjson

from fiscus.errors import StoreError
from fiscus.events.cost_event import CostEvent
from fiscus.events.outcome_event import OutcomeRecorded
from fiscus.ledger.base import Ledger
from fiscus.ledger.open import default_spill_path
from fiscus.ledger.spill import reingest, spill
from fiscus.stores.base import BudgetStore

log = logging.getLogger("fiscus.ledger")

Entry = CostEvent | OutcomeRecorded
_POLL_SECONDS = 0.02
_STOP = object()
_KICK = object()  # the outbox has more: drain it with the next batch


class LedgerWriter:
    def __init__(
        self,
        ledger: Ledger,
        *,
        batch_size: int = 500,
        flush_interval: float = 0.2,
        max_pending: int = 100_000,
        spill_path: str | Path | None = None,
        retry_initial: float = 0.05,
        retry_max: float = 5.0,
        close_timeout: float = 10.0,
        outbox: BudgetStore | None = None,
    ) -> None:
        if batch_size < 1 or flush_interval < 0 or max_pending < batch_size:
            raise ValueError("need batch_size >= 1, flush_interval >= 0 and max_pending >= batch_size")
        self.ledger = ledger
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.spill_path = Path(spill_path) if spill_path is not None else default_spill_path(ledger)
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.close_timeout = close_timeout
        self.outbox = outbox
        self.drained = 0  # outbox records the ledger took as new
        self.written = 0  # events the ledger took as new
        self.spilled = 0  # events sent to the spill file
        self.lost = 0  # events neither stored nor spilled (only if the spill file cannot be written)
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._closed = False
        self._kick_pending = False
        self._close_deadline = float("inf")
        self._thread = threading.Thread(target=self._run, name="fiscus-ledger-writer", daemon=True)
        atexit.register(self.close)
        self._thread.start()

    def submit(self, event: CostEvent | OutcomeRecorded) -> None:
        """Queue one event; never waits on the database."""
        if self._closed:
            raise StoreError("ledger writer is closed; events can no longer be submitted")
        if not isinstance(event, CostEvent | OutcomeRecorded):
            raise TypeError(f"LedgerWriter.submit takes a CostEvent or an OutcomeRecorded, got {type(event).__name__}")
        self._queue.put(event)

    def kick(self) -> None:
        """The outbox has a new record: drain it within a flush interval; never waits on the database. One kick
        waits in the queue at a time (the drain that follows takes every record committed before it starts)."""
        if not self._kick_pending:
            self._kick_pending = True
            self._queue.put(_KICK)

    def _retry_kick(self) -> None:
        if not self._closed:
            self._queue.put(_KICK)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event submitted before this call is stored (or spilled); False on timeout."""
        if not self._thread.is_alive():
            return self._queue.empty()
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Store everything queued, then stop. If the ledger is still down after `close_timeout` seconds the
        rest is spilled, so a clean stop loses nothing."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        limit = self.close_timeout if timeout is None else timeout
        self._close_deadline = time.monotonic() + limit
        self._queue.put(_STOP)
        self._thread.join()

    def __enter__(self) -> LedgerWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # The writer thread.

    def _run(self) -> None:
        try:
            reingest(self.ledger, self.spill_path, batch_size=self.batch_size)
        except Exception as exc:
            log.warning("fiscus ledger: could not re-ingest %s yet (%s)", self.spill_path, exc)
        self._drain_outbox()
        stop = False
        while not stop:
            batch, markers, stop = self._collect()
            kicked = any(e is _KICK for e in batch)
            if kicked:
                batch = [e for e in batch if e is not _KICK]
            try:
                if batch:
                    self._write(batch, markers)
            except Exception:  # a bug, not an outage: keep the thread alive and say what was lost
                self.lost += len(batch)
                log.exception("fiscus ledger: %d events could be neither stored nor spilled", len(batch))
            if kicked or markers or stop:
                self._kick_pending = False  # cleared before the drain reads: a later record kicks anew
                self._drain_outbox(final=stop)
            for marker in markers:
                marker.set()

    def _drain_outbox(self, *, final: bool = False) -> None:
        """Move the outbox to the ledger, a batch at a time, until it is empty. While the ledger or the store
        is down the records stay in the outbox (durable already) and the drain is tried again, with backoff,
        until the next kick or — when closing — the close deadline."""
        if self.outbox is None:
            return
        delay = self.retry_initial
        failures = 0
        while True:
            try:
                entries = self.outbox.outbox(self.batch_size)
                if not entries:
                    if failures:
                        log.warning("fiscus ledger: outbox drained after %d retries", failures)
                    return
                events = [CostEvent.from_dict(orjson.loads(entry.record)) for entry in entries]
                self.drained += self.ledger.append(events)
                self.outbox.outbox_done(entries)
                continue
            except Exception as exc:
                failures += 1
                if failures == 1:
                    log.warning("fiscus ledger: draining the budget store's outbox failed, retrying (%s)", exc)
            if time.monotonic() >= self._close_deadline:
                return  # closing: the records wait in the outbox for the next start
            if not final and failures >= 4:  # let the queue move meanwhile; come back on a timer
                timer = threading.Timer(self.retry_max, self._retry_kick)
                timer.daemon = True
                timer.start()
                return
            time.sleep(min(delay, max(0.0, self._close_deadline - time.monotonic())))
            delay = min(delay * 2, self.retry_max)

    def _collect(self) -> tuple[list[Entry], list[threading.Event], bool]:
        """Block for the first item, then take more until a full batch, `flush_interval`, a flush or stop.

        After the first item the thread polls the queue in short sleeps instead of blocking on it: a blocked
        `get` is woken by every `submit`, which costs the submitting (request-serving) thread a thread switch
        per event under load."""
        batch: list[Entry] = []
        markers: list[threading.Event] = []
        item = self._queue.get()
        deadline = time.monotonic() + self.flush_interval
        while True:
            if item is _STOP:
                rest, more_markers, _ = self._drain()
                return batch + rest, markers + more_markers, True
            if isinstance(item, threading.Event):
                markers.append(item)
                return batch, markers, False
            batch.append(item)  # type: ignore[arg-type]
            if len(batch) >= self.batch_size:
                return batch, markers, False
            while True:
                try:
                    item = self._queue.get_nowait()
                    break
                except queue.Empty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return batch, markers, False
                    time.sleep(min(remaining, _POLL_SECONDS))

    def _drain(self) -> tuple[list[Entry], list[threading.Event], bool]:
        """Everything queued right now, without waiting."""
        events: list[Entry] = []
        markers: list[threading.Event] = []
        stop = False
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return events, markers, stop
            if item is _STOP:
                stop = True
            elif isinstance(item, threading.Event):
                markers.append(item)
            else:
                events.append(item)  # type: ignore[arg-type]

    def _write(self, batch: list[Entry], markers: list[threading.Event]) -> None:
        delay = self.retry_initial
        failures = 0
        while True:
            for start in range(0, len(batch), self.batch_size):
                try:
                    self.written += self._append(batch[start : start + self.batch_size])
                except Exception as exc:
                    failures += 1
                    batch = batch[start:]
                    if failures == 1:
                        log.warning("fiscus ledger: write of %d events failed, retrying (%s)", len(batch), exc)
                    break
            else:
                if failures:
                    log.warning("fiscus ledger: write succeeded after %d retries", failures)
                return
            over_bound = len(batch) + self._queue.qsize() > self.max_pending
            if over_bound or time.monotonic() >= self._close_deadline:
                self._spill(batch, markers, reason="memory bound reached" if over_bound else "closing")
                return
            time.sleep(min(delay, max(0.0, self._close_deadline - time.monotonic())))
            delay = min(delay * 2, self.retry_max)

    def _append(self, batch: list[Entry]) -> int:
        """One batch to the ledger; session outcomes (rare: one per case) ride along in the same batch."""
        if not any(type(e) is OutcomeRecorded for e in batch):
            return self.ledger.append(batch)  # type: ignore[arg-type]
        costs = [e for e in batch if isinstance(e, CostEvent)]
        outcomes = [e for e in batch if isinstance(e, OutcomeRecorded)]
        new = self.ledger.append(costs) if costs else 0
        # Appends are idempotent, so a retry after an outcome write failed counts no cost event twice.
        return new + self.ledger.record_outcomes(outcomes)

    def _spill(self, batch: list[Entry], markers: list[threading.Event], *, reason: str) -> None:
        rest, more_markers, stop = self._drain()
        events = batch + rest
        markers.extend(more_markers)
        if stop:
            self._queue.put(_STOP)  # let the main loop see the stop after this batch
        try:
            spill(self.spill_path, events)
        except OSError:  # disk full, permissions: say so loudly, never silently
            self.lost += len(events)
            log.exception("fiscus ledger: %d events could be neither stored nor spilled", len(events))
            return
        self.spilled += len(events)
        log.error(
            "fiscus ledger: %s %s unreachable (%s); spilled %d events to %s, re-ingested on next start",
            type(self.ledger).__name__,
            getattr(self.ledger, "url", ""),
            reason,
            len(events),
            self.spill_path,
        )
