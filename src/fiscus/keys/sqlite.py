"""Virtual keys in a SQLite file (the default: `.fiscus/keys.db`)."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from fiscus.errors import StoreError
from fiscus.keys.claims import KeyClaims, OnDisallowed
from fiscus.keys.model import VirtualKey
from fiscus.keys.store import KeyStore, allow_json, attribution_json, key_from_row

_SCHEMA = """
CREATE TABLE IF NOT EXISTS fiscus_virtual_keys (
    id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    name TEXT,
    attribution TEXT NOT NULL,
    locked INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    allow TEXT,
    on_disallowed TEXT
)
"""
# Columns added after the first release, with what an older file's keys get: a key once "locked" ignored
# agent and team headers, so it keeps ignoring what it does not allow; every other key refuses.
_ADDED = {
    "allow": "ALTER TABLE fiscus_virtual_keys ADD COLUMN allow TEXT",
    "on_disallowed": "ALTER TABLE fiscus_virtual_keys ADD COLUMN on_disallowed TEXT",
}
_BACKFILL = (
    "UPDATE fiscus_virtual_keys SET on_disallowed = CASE WHEN locked THEN 'ignore' ELSE 'refuse' END"
    " WHERE on_disallowed IS NULL"
)
_COLUMNS = "id, key_hash, prefix, name, attribution, created_at, revoked_at, allow, on_disallowed"


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


class SqliteKeyStore(KeyStore):
    def __init__(self, path: str) -> None:
        self.path = path
        try:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            # One connection shared under a lock: key traffic is tiny once the key ring caches.
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA busy_timeout = 5000")
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"key store {path}: cannot open ({exc})") from None
        self._lock = threading.Lock()

    def _migrate(self) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait, then find it done
        try:
            conn.execute(_SCHEMA)
            have = {row[1] for row in conn.execute("PRAGMA table_info(fiscus_virtual_keys)")}
            for column, sql in _ADDED.items():
                if column not in have:
                    conn.execute(sql)
            conn.execute(_BACKFILL)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _run(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        try:
            with self._lock:
                return self._conn.execute(sql, params).fetchall()
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"key store {self.path}: {exc}") from None
        except sqlite3.Error as exc:
            raise StoreError(f"key store {self.path}: {exc}") from None

    def add(self, key: VirtualKey) -> None:
        self._run(
            f"INSERT INTO fiscus_virtual_keys ({_COLUMNS}, locked) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key.id,
                key.key_hash,
                key.prefix,
                key.name,
                attribution_json(key.attribution),
                key.created_at.astimezone(UTC).isoformat(),
                key.revoked_at.astimezone(UTC).isoformat() if key.revoked_at else None,
                allow_json(key.claims),
                str(key.claims.on_disallowed),
                int(key.claims.on_disallowed is OnDisallowed.IGNORE),  # what an older fiscus reads
            ),
        )

    def find(self, key_hash: str) -> VirtualKey | None:
        rows = self._run(f"SELECT {_COLUMNS} FROM fiscus_virtual_keys WHERE key_hash = ?", (key_hash,))
        return key_from_row(rows[0], _parse) if rows else None

    def get(self, key_id: str) -> VirtualKey | None:
        rows = self._run(f"SELECT {_COLUMNS} FROM fiscus_virtual_keys WHERE id = ?", (key_id,))
        return key_from_row(rows[0], _parse) if rows else None

    def list(self) -> list[VirtualKey]:
        rows = self._run(f"SELECT {_COLUMNS} FROM fiscus_virtual_keys ORDER BY created_at, id")
        return [key_from_row(row, _parse) for row in rows]

    def revoke(self, key_id: str, at: datetime) -> VirtualKey | None:
        self._run(
            "UPDATE fiscus_virtual_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (at.astimezone(UTC).isoformat(), key_id),
        )
        return self.get(key_id)

    def set_claims(self, key_id: str, claims: KeyClaims) -> VirtualKey | None:
        self._run(
            "UPDATE fiscus_virtual_keys SET allow = ?, on_disallowed = ?, locked = ? WHERE id = ?",
            (allow_json(claims), str(claims.on_disallowed), int(claims.on_disallowed is OnDisallowed.IGNORE), key_id),
        )
        return self.get(key_id)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
