"""`SettleRetry`: a settle the budget store failed (a Redis blip, a locked file) is kept and tried again until it lands.

The call was served and its answer may be gone already, so failing it is no option, and dropping the settle would
leave the counters below the ledger for good. Each failed settle is appended to a journal file (synced) before the
call goes on, and a daemon thread settles the journal's entries with backoff; a settle is idempotent per
reservation id, so one that did land before the error was seen is a harmless DUPLICATE. Each process keeps its own
journal (`<path>.<pid>-<n>.jsonl`) and holds a lock on it while it lives; a new retrier takes over the journals whose
process is gone, so a crash loses no pending settle either.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from fiscus.engine.ports import Reservation, ReserveLine
from fiscus.meters import Amounts, Limits
from fiscus.stores.base import BudgetStore

log = logging.getLogger("fiscus.stores")

RETRY_INITIAL = 0.05
RETRY_MAX = 5.0
_INSTANCES = itertools.count()


@dataclass(frozen=True, slots=True)
class PendingSettle:
    """A settle to land: what `BudgetStore.settle` is called with."""

    reservation: Reservation
    actual: Amounts
    now: float
    record: bytes | None = None

    def to_json(self) -> bytes:
        res = self.reservation
        return orjson.dumps(
            {
                "id": res.id,
                "lease": res.lease_expires_at,
                "lines": [
                    {
                        "budget": line.budget,
                        "keys": list(line.keys),
                        "limits": [line.limits.nanos, line.limits.tokens, line.limits.requests],
                        "amount": _triple(line.amount),
                        "expires_at": line.expires_at,
                    }
                    for line in res.lines
                ],
                "actual": _triple(self.actual),
                "now": self.now,
                "record": None if self.record is None else self.record.decode(),
            }
        )

    @classmethod
    def from_json(cls, raw: bytes) -> PendingSettle:
        data: dict[str, Any] = orjson.loads(raw)
        lines = tuple(
            ReserveLine(
                line["budget"],
                tuple(line["keys"]),
                Limits(*line["limits"]),
                Amounts(*line["amount"]),
                line["expires_at"],
            )
            for line in data["lines"]
        )
        record = data.get("record")
        return cls(
            Reservation(data["id"], lines, data["lease"]),
            Amounts(*data["actual"]),
            data["now"],
            None if record is None else record.encode(),
        )


class SettleRetry:
    """Keeps failed settles of `store` and lands them. `path`: the journal's base name (None: in memory only, for
    tests and embedded use without a file — then a crash loses what is pending)."""

    def __init__(self, store: BudgetStore, path: str | Path | None, *, retry_max: float = RETRY_MAX) -> None:
        self.store = store
        self.retry_max = retry_max
        self.landed = 0  # settles landed by a retry
        self._pending: dict[str, PendingSettle] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._base = Path(path) if path is not None else None
        self._journal: Path | None = None
        self._lock_file: IO[bytes] | None = None
        self._lock_path: Path | None = None
        if self._base is not None:
            self._open_journal(self._base)
        self._thread = threading.Thread(target=self._run, name="fiscus-settle-retry", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._pending)

    def add(self, pending: PendingSettle) -> None:
        """Keep a failed settle (synced to the journal before this returns) and wake the retry thread."""
        with self._cond:
            self._pending[pending.reservation.id] = pending
            self._write_journal()
            self._cond.notify()

    def wait(self, timeout: float) -> bool:
        """Wait until nothing is pending; False on timeout (tests, a clean stop)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending, timeout)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=2 * self.retry_max)
        if self._lock_file is not None:
            with self._cond:
                if not self._pending and self._lock_path is not None:  # nothing for a successor to take over
                    with contextlib.suppress(FileNotFoundError):
                        self._lock_path.unlink()
            self._lock_file.close()

    # The retry thread.

    def _run(self) -> None:
        delay = RETRY_INITIAL
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closed)
                if self._closed:
                    return
                batch = list(self._pending.values())
            landed = []
            for item in batch:
                try:
                    self.store.settle(item.reservation, item.actual, now=item.now, record=item.record)
                except Exception as exc:
                    log.warning("fiscus store: settle of %s still failing (%s); retrying", item.reservation.id, exc)
                    break
                landed.append(item.reservation.id)
            if landed:
                with self._cond:
                    for rid in landed:
                        self._pending.pop(rid, None)
                    self.landed += len(landed)
                    self._write_journal()
                    self._cond.notify_all()
                log.warning("fiscus store: %d settles landed on retry", len(landed))
                delay = RETRY_INITIAL
            if len(landed) < len(batch):
                with self._cond:
                    self._cond.wait_for(lambda: self._closed, delay)
                delay = min(delay * 2, self.retry_max)

    # The journal (lock held by the caller where it changes).

    def _open_journal(self, base: Path) -> None:
        base.parent.mkdir(parents=True, exist_ok=True)
        # One journal per retrier (a process may run several governors), locked for as long as it lives.
        me = f"{os.getpid()}-{next(_INSTANCES)}"
        self._journal = base.with_name(f"{base.name}.{me}.jsonl")
        self._lock_path = base.with_name(f"{base.name}.{me}.lock")
        self._lock_file = self._lock_path.open("wb")
        fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        adopted = []
        for lock_path in sorted(base.parent.glob(f"{base.name}.*.lock")):
            if lock_path == self._lock_path:
                continue
            journal = lock_path.with_suffix(".jsonl")
            with lock_path.open("rb") as other:
                try:  # its owner is gone when its lock can be taken (flock conflicts within a process too)
                    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue
                if journal.exists():
                    for line in journal.read_bytes().splitlines():
                        if line.strip():
                            item = PendingSettle.from_json(line)
                            self._pending[item.reservation.id] = item
                    adopted.append(journal)
                with contextlib.suppress(FileNotFoundError):
                    lock_path.unlink()
        self._write_journal()
        for journal in adopted:  # only once their entries are safe in ours
            with contextlib.suppress(FileNotFoundError):
                journal.unlink()
        if self._pending:
            log.warning("fiscus store: %d settles pending from an earlier run; retrying", len(self._pending))

    def _write_journal(self) -> None:
        if self._journal is None:
            return
        if not self._pending:
            with contextlib.suppress(FileNotFoundError):
                self._journal.unlink()
            return
        tmp = self._journal.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            fh.write(b"".join(item.to_json() + b"\n" for item in self._pending.values()))
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self._journal)


def _triple(amount: Amounts) -> list[int]:
    return [amount.nanos, amount.tokens, amount.requests]
