"""Overrides in PostgreSQL, for gateways on several hosts (by default the key store's database)."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import psycopg

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
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
)
"""
_COLUMNS = "id, key_id, budget, reason, granted_by, created_at, expires_at, revoked_at"
_SCHEMA_LOCK = 0x6F766572  # "over": gateways starting together create the table one at a time


def _where(url: str) -> str:
    """The URL without user info, for error messages (a password may be in it)."""
    rest = url.split("://", 1)[-1]
    return rest.rsplit("@", 1)[-1].split("?", 1)[0]


def _row(row: tuple[Any, ...]) -> Override:
    override_id, key_id, budget, reason, granted_by, created, expires, revoked = row
    return Override(override_id, reason, created, expires, key_id, budget, granted_by, revoked)


class PostgresOverrideStore(OverrideStore):
    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        try:
            with psycopg.connect(url, connect_timeout=5) as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                conn.execute(_SCHEMA)
        except psycopg.Error as exc:
            raise StoreError(f"override store {_where(url)}: {str(exc).splitlines()[0]}") from None

    def _run(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            for attempt in (1, 2):  # one reconnect: a restarted server drops idle connections
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = psycopg.connect(self._url, autocommit=True, connect_timeout=5)
                    cursor = self._conn.execute(sql, params)
                    return cursor.fetchall() if cursor.description else []
                except psycopg.OperationalError as exc:
                    if self._conn is not None:
                        self._conn.close()
                    if attempt == 2:
                        raise StoreError(f"override store {_where(self._url)}: {str(exc).splitlines()[0]}") from None
                except psycopg.Error as exc:
                    raise StoreError(f"override store {_where(self._url)}: {str(exc).splitlines()[0]}") from None
        return []

    def add(self, override: Override) -> None:
        o = override
        self._run(
            f"INSERT INTO fiscus_overrides ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, NULL)",
            (o.id, o.key_id, o.budget, o.reason, o.granted_by, o.created_at, o.expires_at),
        )

    def get(self, override_id: str) -> Override | None:
        rows = self._run(f"SELECT {_COLUMNS} FROM fiscus_overrides WHERE id = %s", (override_id,))
        return _row(rows[0]) if rows else None

    def list(self, *, active_at: datetime | None = None) -> list[Override]:
        if active_at is None:
            rows = self._run(f"SELECT {_COLUMNS} FROM fiscus_overrides ORDER BY created_at, id")
        else:
            rows = self._run(
                f"SELECT {_COLUMNS} FROM fiscus_overrides WHERE revoked_at IS NULL AND created_at <= %s AND"
                " expires_at > %s ORDER BY created_at, id",
                (active_at, active_at),
            )
        return [_row(row) for row in rows]

    def revoke(self, override_id: str, at: datetime) -> Override | None:
        self._run("UPDATE fiscus_overrides SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL", (at, override_id))
        return self.get(override_id)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
