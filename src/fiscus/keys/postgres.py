"""Virtual keys in PostgreSQL, for gateways on several hosts sharing one set of keys."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import psycopg

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
    attribution JSONB NOT NULL,
    locked BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
ALTER TABLE fiscus_virtual_keys ADD COLUMN IF NOT EXISTS allow JSONB;
ALTER TABLE fiscus_virtual_keys ADD COLUMN IF NOT EXISTS on_disallowed TEXT;
UPDATE fiscus_virtual_keys SET on_disallowed = CASE WHEN locked THEN 'ignore' ELSE 'refuse' END
    WHERE on_disallowed IS NULL;
"""
# `allow` and `on_disallowed` came after the first release: a key once "locked" ignored agent and team headers,
# so it keeps ignoring what it does not allow; every other key refuses. `locked` is still written for an older
# fiscus sharing the database. Gateways starting together migrate one at a time under an advisory lock.
_MIGRATION_LOCK = 0x66697363  # "fisc"
_COLUMNS = "id, key_hash, prefix, name, attribution::text, created_at, revoked_at, allow::text, on_disallowed"


def _same(value: datetime) -> datetime:
    return value


def _where(url: str) -> str:
    """The URL without user info, for error messages (a password may be in it)."""
    rest = url.split("://", 1)[-1]
    return rest.rsplit("@", 1)[-1].split("?", 1)[0]


class PostgresKeyStore(KeyStore):
    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._migrate()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._url, autocommit=True, connect_timeout=5)
        return self._conn

    def _migrate(self) -> None:
        try:
            with psycopg.connect(self._url, connect_timeout=5) as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                conn.execute(_SCHEMA)
        except psycopg.Error as exc:
            raise StoreError(f"key store {_where(self._url)}: {str(exc).splitlines()[0]}") from None

    def _run(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            for attempt in (1, 2):  # one reconnect: a pooled-out or restarted server drops idle connections
                try:
                    cursor = self._connection().execute(sql, params)
                    return cursor.fetchall() if cursor.description else []
                except psycopg.OperationalError as exc:
                    if self._conn is not None:
                        self._conn.close()
                    if attempt == 2:
                        raise StoreError(f"key store {_where(self._url)}: {str(exc).splitlines()[0]}") from None
                except psycopg.Error as exc:
                    raise StoreError(f"key store {_where(self._url)}: {str(exc).splitlines()[0]}") from None
        return []

    def add(self, key: VirtualKey) -> None:
        self._run(
            "INSERT INTO fiscus_virtual_keys (id, key_hash, prefix, name, attribution, created_at, revoked_at, allow,"
            " on_disallowed, locked) VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s, %s::jsonb, %s, %s)",
            (
                key.id,
                key.key_hash,
                key.prefix,
                key.name,
                attribution_json(key.attribution),
                key.created_at,
                key.revoked_at,
                allow_json(key.claims),
                str(key.claims.on_disallowed),
                key.claims.on_disallowed is OnDisallowed.IGNORE,
            ),
        )

    def find(self, key_hash: str) -> VirtualKey | None:
        rows = self._run(f"SELECT {_COLUMNS} FROM fiscus_virtual_keys WHERE key_hash = %s", (key_hash,))
        return key_from_row(rows[0], _same) if rows else None

    def get(self, key_id: str) -> VirtualKey | None:
        rows = self._run(f"SELECT {_COLUMNS} FROM fiscus_virtual_keys WHERE id = %s", (key_id,))
        return key_from_row(rows[0], _same) if rows else None

    def list(self) -> list[VirtualKey]:
        rows = self._run(f"SELECT {_COLUMNS} FROM fiscus_virtual_keys ORDER BY created_at, id")
        return [key_from_row(row, _same) for row in rows]

    def revoke(self, key_id: str, at: datetime) -> VirtualKey | None:
        self._run("UPDATE fiscus_virtual_keys SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL", (at, key_id))
        return self.get(key_id)

    def set_claims(self, key_id: str, claims: KeyClaims) -> VirtualKey | None:
        self._run(
            "UPDATE fiscus_virtual_keys SET allow = %s::jsonb, on_disallowed = %s, locked = %s WHERE id = %s",
            (allow_json(claims), str(claims.on_disallowed), claims.on_disallowed is OnDisallowed.IGNORE, key_id),
        )
        return self.get(key_id)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
