"""Overrides in a SQLite file (by default the key store's, `.fiscus/keys.db`)."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fiscus.errors import StoreError
from fiscus.overrides.model import Override
from fiscus.overrides.store import OverrideStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS fiscus_overrides (
    id TEXT PRIMARY KEY,
    key_id TEXT,
    budget TEXT,
    reason TEXT NOT NULL,
    granted_by TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT
)
"""
_COLUMNS = "id, key_id, budget, reason, granted_by, created_at, expires_at, revoked_at"


def _text(moment: datetime | None) -> str | None:
    # fixed width, so the text compares as the time it is
    return moment.astimezone(UTC).isoformat(timespec="microseconds") if moment is not None else None


def _row(row: tuple[Any, ...]) -> Override:
    override_id, key_id, budget, reason, granted_by, created, expires, revoked = row
    return Override(
        id=override_id,
        key_id=key_id,
        budget=budget,
        reason=reason,
        granted_by=granted_by,
        created_at=datetime.fromisoformat(created),
        expires_at=datetime.fromisoformat(expires),
        revoked_at=datetime.fromisoformat(revoked) if revoked else None,
    )


class SqliteOverrideStore(OverrideStore):
    def __init__(self, path: str) -> None:
        self.path = path
        try:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA busy_timeout = 5000")
            self._conn.execute(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"override store {path}: cannot open ({exc})") from None
        self._lock = threading.Lock()

    def _run(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            with self._lock:
                return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"override store {self.path}: {exc}") from None

    def add(self, override: Override) -> None:
        o = override
        self._run(
            f"INSERT INTO fiscus_overrides ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (o.id, o.key_id, o.budget, o.reason, o.granted_by, _text(o.created_at), _text(o.expires_at), None),
        )

    def get(self, override_id: str) -> Override | None:
        rows = self._run(f"SELECT {_COLUMNS} FROM fiscus_overrides WHERE id = ?", (override_id,))
        return _row(rows[0]) if rows else None

    def list(self, *, active_at: datetime | None = None) -> list[Override]:
        if active_at is None:
            rows = self._run(f"SELECT {_COLUMNS} FROM fiscus_overrides ORDER BY created_at, id")
        else:  # ISO text in UTC compares as time
            at = _text(active_at)
            rows = self._run(
                f"SELECT {_COLUMNS} FROM fiscus_overrides WHERE revoked_at IS NULL AND created_at <= ? AND"
                " expires_at > ? ORDER BY created_at, id",
                (at, at),
            )
        return [_row(row) for row in rows]

    def revoke(self, override_id: str, at: datetime) -> Override | None:
        self._run(
            "UPDATE fiscus_overrides SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (_text(at), override_id)
        )
        return self.get(override_id)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
