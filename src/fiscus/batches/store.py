"""Where a door keeps the batches it admitted until their results are settled (`BatchRecord`), and whose files
are whose — in the key store's database (`keys:`, SQLite or PostgreSQL), so every gateway worker, a restarted
gateway, or another process wrapping a client over the same config can settle a batch another one submitted.
The one part of `fiscus.batches` that does I/O. Each door has its tables (`prefix`): the gateway's batches are
settled with the gateway's provider credentials, the SDK's through the client that sees them ended or by
`fiscus batches settle` with the config's."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

from fiscus.batches.records import BatchRecord
from fiscus.errors import StoreError


def _tables(prefix: str) -> tuple[str, ...]:
    return (
        f"CREATE TABLE IF NOT EXISTS {prefix}batches (id TEXT PRIMARY KEY, key_id TEXT NOT NULL, settled INTEGER"
        " NOT NULL DEFAULT 0, created_at DOUBLE PRECISION NOT NULL, record TEXT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {prefix}batch_files (id TEXT PRIMARY KEY, key_id TEXT NOT NULL)",
    )


class BatchStore:
    """Thread-safe; each call is one statement. SQLite (`sqlite:///path`) or PostgreSQL (`postgresql://...`)."""

    def __init__(self, url: str, *, prefix: str = "fiscus_") -> None:
        self._batches, self._files = f"{prefix}batches", f"{prefix}batch_files"
        self._lock = threading.Lock()
        self._url = url
        self._pg = url.startswith(("postgresql://", "postgres://"))
        self._mark = "%s" if self._pg else "?"
        self._conn: Any = None
        try:
            self._conn = self._connect()
            for statement in _tables(prefix):
                self._conn.execute(statement)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"batch store {url}: cannot open ({exc})") from None
        except Exception as exc:  # psycopg's errors, without importing it for SQLite users
            raise StoreError(f"batch store: cannot open ({str(exc).splitlines()[0]})") from None

    def _connect(self) -> Any:
        if self._pg:
            import psycopg

            return psycopg.connect(self._url, autocommit=True, connect_timeout=5)
        if not self._url.startswith("sqlite:///"):
            raise StoreError(f"unsupported batch store URL {self._url!r}; use sqlite:///path or postgresql://...")
        path = self._url.removeprefix("sqlite:///")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 5000")
        return conn

    def _run(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        sql = sql.replace("?", self._mark)
        with self._lock:
            try:
                if self._pg and self._conn.closed:
                    self._conn = self._connect()
                cursor = self._conn.execute(sql, params)
                return cursor.fetchall() if cursor.description else []
            except StoreError:
                raise
            except Exception as exc:  # sqlite3.Error or psycopg.Error: one readable line
                raise StoreError(f"batch store: {str(exc).splitlines()[0]}") from None

    def add(self, record: BatchRecord) -> None:
        self._run(
            f"INSERT INTO {self._batches} (id, key_id, settled, created_at, record) VALUES (?, ?, 0, ?, ?)",
            (record.id, record.key_id, record.admitted_at, record.to_json()),
        )

    def get(self, batch_id: str) -> BatchRecord | None:
        rows = self._run(f"SELECT record, settled FROM {self._batches} WHERE id = ?", (batch_id,))
        return BatchRecord.from_json(rows[0][0], bool(rows[0][1])) if rows else None

    def mark_settled(self, batch_id: str) -> None:
        self._run(f"UPDATE {self._batches} SET settled = 1 WHERE id = ?", (batch_id,))

    def unsettled(self, limit: int = 100) -> list[str]:
        """Ids of batches whose results are not settled yet, oldest first."""
        rows = self._run(f"SELECT id FROM {self._batches} WHERE settled = 0 ORDER BY created_at LIMIT ?", (limit,))
        return [row[0] for row in rows]

    def own_file(self, file_id: str, key_id: str) -> None:
        conflict = "ON CONFLICT (id) DO NOTHING" if self._pg else ""
        verb = "INSERT" if self._pg else "INSERT OR IGNORE"
        self._run(f"{verb} INTO {self._files} (id, key_id) VALUES (?, ?) {conflict}", (file_id, key_id))

    def file_owner(self, file_id: str) -> str | None:
        rows = self._run(f"SELECT key_id FROM {self._files} WHERE id = ?", (file_id,))
        return rows[0][0] if rows else None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
