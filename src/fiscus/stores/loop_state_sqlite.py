"""`SqliteLoopState` (sqlite:///path.db): loop state shared by the processes of one host, in the same file as
the breaker state (`breakers.db` beside the budget store). One swap is one `BEGIN IMMEDIATE`."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from fiscus.errors import StoreError
from fiscus.guards.loop_state import Held, LoopStateStore
from fiscus.sqlite_wal import connect_wal

_SCHEMA = """CREATE TABLE IF NOT EXISTS fiscus_loop_state (
    key TEXT PRIMARY KEY, version INTEGER NOT NULL, data BLOB NOT NULL, expires REAL NOT NULL)"""
_PUT = """INSERT INTO fiscus_loop_state (key, version, data, expires) VALUES (?, ?, ?, ?)
ON CONFLICT(key) DO UPDATE SET version = excluded.version, data = excluded.data, expires = excluded.expires"""
_PRUNE_EVERY = 512  # swaps between two deletions of the expired records


class SqliteLoopState(LoopStateStore):
    def __init__(self, path: str | Path, *, timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self._lock = threading.Lock()
        self._swaps = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = connect_wal(self.path, busy_timeout_ms=int(timeout_s * 1000))
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"loop state {self.url}: {exc}") from None

    def swap(self, records: list[tuple[str, int, bytes]], ttl_s: float) -> dict[str, Held] | None:
        now = time.time()  # wall clock: shared by the processes
        db = self._db
        held: dict[str, Held] = {}
        try:
            with self._lock:
                db.execute("BEGIN IMMEDIATE")
                try:
                    for key, _, _ in records:
                        row = db.execute(
                            "SELECT version, data FROM fiscus_loop_state WHERE key = ? AND expires > ?", (key, now)
                        ).fetchone()
                        held[key] = (int(row[0]), bytes(row[1])) if row is not None else (0, None)
                    stored = all(held[key][0] == version for key, version, _ in records)
                    if stored:
                        db.executemany(_PUT, [(key, v + 1, data, now + ttl_s) for key, v, data in records])
                        self._swaps += 1
                        if self._swaps % _PRUNE_EVERY == 0:
                            db.execute("DELETE FROM fiscus_loop_state WHERE expires <= ?", (now,))
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise StoreError(f"loop state {self.url}: {exc}") from None
        return None if stored else held

    def close(self) -> None:
        with self._lock:
            self._db.close()
