"""`SqliteBreakerWindows` (sqlite:///path.db): breaker windows shared by the processes of one host, in the same
file as the breaker state (`breakers.db` beside the budget store). One exchange is one `BEGIN IMMEDIATE`."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path

from fiscus.errors import StoreError
from fiscus.guards.windows import BreakerWindows, Delta, Horizon, Totals
from fiscus.sqlite_wal import connect_wal

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS fiscus_breaker_spend (
        scope TEXT NOT NULL, hour INTEGER NOT NULL, nanos INTEGER NOT NULL, PRIMARY KEY (scope, hour))""",
    """CREATE TABLE IF NOT EXISTS fiscus_breaker_calls (
        scope TEXT NOT NULL, bucket INTEGER NOT NULL, calls INTEGER NOT NULL, failures INTEGER NOT NULL,
        PRIMARY KEY (scope, bucket))""",
    """CREATE TABLE IF NOT EXISTS fiscus_breaker_probes (
        scope TEXT PRIMARY KEY, holder TEXT NOT NULL, until REAL NOT NULL)""",
)
_ADD_SPEND = """INSERT INTO fiscus_breaker_spend (scope, hour, nanos) VALUES (?, ?, ?)
ON CONFLICT(scope, hour) DO UPDATE SET nanos = nanos + excluded.nanos"""
_ADD_CALLS = """INSERT INTO fiscus_breaker_calls (scope, bucket, calls, failures) VALUES (?, ?, ?, ?)
ON CONFLICT(scope, bucket) DO UPDATE SET calls = calls + excluded.calls, failures = failures + excluded.failures"""
_CLAIM = """INSERT INTO fiscus_breaker_probes (scope, holder, until) VALUES (?, ?, ?)
ON CONFLICT(scope) DO UPDATE SET holder = excluded.holder, until = excluded.until
WHERE fiscus_breaker_probes.holder = excluded.holder OR fiscus_breaker_probes.until <= ?"""


class SqliteBreakerWindows(BreakerWindows):
    def __init__(self, path: str | Path, *, timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = connect_wal(self.path, busy_timeout_ms=int(timeout_s * 1000))
            for statement in _SCHEMA:
                self._db.execute(statement)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"breaker windows {self.url}: {exc}") from None

    def exchange(self, deltas: Mapping[str, Delta], scopes: list[str], horizon: Horizon) -> dict[str, Totals]:
        wanted = list(dict.fromkeys([*deltas, *scopes]))
        db = self._db
        try:
            with self._lock:
                db.execute("BEGIN IMMEDIATE")
                try:
                    spend = [(s, horizon.hour, d.spend_nanos) for s, d in deltas.items() if d.spend_nanos]
                    calls = [(s, horizon.bucket, d.calls, d.failures) for s, d in deltas.items() if d.calls]
                    if spend:
                        db.executemany(_ADD_SPEND, spend)
                    if calls:
                        db.executemany(_ADD_CALLS, calls)
                    if spend or calls:  # only a writer prunes: a reader's horizon may be another config's
                        db.execute("DELETE FROM fiscus_breaker_spend WHERE hour < ?", (horizon.oldest_hour,))
                        db.execute("DELETE FROM fiscus_breaker_calls WHERE bucket < ?", (horizon.oldest_bucket,))
                    marks = ",".join("?" * len(wanted))
                    hours = db.execute(
                        f"SELECT scope, hour, nanos FROM fiscus_breaker_spend WHERE scope IN ({marks}) AND hour >= ?",
                        (*wanted, horizon.oldest_hour),
                    ).fetchall()
                    buckets = db.execute(
                        f"SELECT scope, bucket, calls, failures FROM fiscus_breaker_calls "
                        f"WHERE scope IN ({marks}) AND bucket >= ?",
                        (*wanted, horizon.oldest_bucket),
                    ).fetchall()
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise StoreError(f"breaker windows {self.url}: {exc}") from None
        hourly: dict[str, dict[int, int]] = {s: {} for s in wanted}
        counts: dict[str, dict[int, tuple[int, int]]] = {s: {} for s in wanted}
        for scope, hour, nanos in hours:
            hourly[scope][hour] = nanos
        for scope, bucket, n, failed in buckets:
            counts[scope][bucket] = (n, failed)
        return {s: Totals(hourly[s], counts[s]) for s in wanted}

    def claim_probe(self, scope: str, holder: str, *, now: float, lease_s: float) -> bool:
        try:
            with self._lock:
                cursor = self._db.execute(_CLAIM, (scope, holder, now + lease_s, now))
        except sqlite3.Error as exc:
            raise StoreError(f"breaker windows {self.url}: {exc}") from None
        return cursor.rowcount > 0

    def release_probe(self, scope: str, holder: str) -> None:
        self._run("DELETE FROM fiscus_breaker_probes WHERE scope = ? AND holder = ?", (scope, holder))

    def clear(self, scope: str) -> None:
        for table in ("fiscus_breaker_spend", "fiscus_breaker_calls", "fiscus_breaker_probes"):
            self._run(f"DELETE FROM {table} WHERE scope = ?", (scope,))

    def _run(self, sql: str, args: tuple[object, ...]) -> None:
        try:
            with self._lock:
                self._db.execute(sql, args)
        except sqlite3.Error as exc:
            raise StoreError(f"breaker windows {self.url}: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()
