"""`SqliteBreakerState` (sqlite:///path.db): breaker records shared by the processes of one host."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from fiscus.errors import StoreError
from fiscus.guards.record import BreakerRecord
from fiscus.guards.state import BreakerStateStore
from fiscus.sqlite_wal import connect_wal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS fiscus_breakers (
    scope TEXT PRIMARY KEY,
    since REAL NOT NULL,
    body TEXT NOT NULL
)
"""
# Newest wins: an older record (a slow writer's trip) never replaces a newer one.
_SAVE = """
INSERT INTO fiscus_breakers (scope, since, body) VALUES (?, ?, ?)
ON CONFLICT(scope) DO UPDATE SET since = excluded.since, body = excluded.body
WHERE excluded.since > fiscus_breakers.since
"""


class SqliteBreakerState(BreakerStateStore):
    def __init__(self, path: str | Path, *, timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = connect_wal(self.path, busy_timeout_ms=int(timeout_s * 1000))
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"breaker state {self.url}: {exc}") from None

    def save(self, record: BreakerRecord) -> bool:
        try:
            with self._lock:
                cursor = self._db.execute(_SAVE, (record.scope, record.since, record.to_json()))
        except sqlite3.Error as exc:
            raise StoreError(f"breaker state {self.url}: {exc}") from None
        return cursor.rowcount > 0

    def load_all(self) -> list[BreakerRecord]:
        try:
            with self._lock:
                rows = self._db.execute("SELECT body FROM fiscus_breakers").fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"breaker state {self.url}: {exc}") from None
        return [BreakerRecord.from_json(body) for (body,) in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
