"""A key store written before allow-lists opens with its keys intact: a key once locked ignores what it does not
allow, every other key refuses; both backends."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fiscus.keys import OnDisallowed, hash_key, open_key_store

_OLD = """
CREATE TABLE fiscus_virtual_keys (
    id TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL, name TEXT,
    attribution {json} NOT NULL, locked {boolean} NOT NULL, created_at {time} NOT NULL, revoked_at {time}
)
"""
_ROWS = [
    ("vk_locked", hash_key("fk-" + "l" * 32), "fk-lllll", '{"agent": "a", "team": "t", "environment": "prod"}', True),
    ("vk_open", hash_key("fk-" + "o" * 32), "fk-ooooo", '{"agent": "b", "team": "t", "environment": "prod"}', False),
]


def _old_sqlite(path: Path) -> str:
    conn = sqlite3.connect(path)
    conn.execute(_OLD.format(json="TEXT", boolean="INTEGER", time="TEXT"))
    for key_id, digest, prefix, attribution, locked in _ROWS:
        conn.execute(
            "INSERT INTO fiscus_virtual_keys VALUES (?, ?, ?, NULL, ?, ?, '2026-01-01T00:00:00+00:00', NULL)",
            (key_id, digest, prefix, attribution, int(locked)),
        )
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def _old_postgres(url: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_OLD.format(json="JSONB", boolean="BOOLEAN", time="TIMESTAMPTZ"))
        for key_id, digest, prefix, attribution, locked in _ROWS:
            conn.execute(
                "INSERT INTO fiscus_virtual_keys VALUES (%s, %s, %s, NULL, %s::jsonb, %s, now(), NULL)",
                (key_id, digest, prefix, attribution, locked),
            )
    return url


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_old_keys_open_with_claims(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if backend == "sqlite":
        url = _old_sqlite(tmp_path / "keys.db")
    else:
        url = _old_postgres(request.getfixturevalue("postgres_url"))
    for _ in range(2):  # the second open finds the migration done
        with open_key_store(url) as store:
            locked, unlocked = store.get("vk_locked"), store.get("vk_open")
            assert locked is not None and locked.claims.on_disallowed is OnDisallowed.IGNORE
            assert unlocked is not None and unlocked.claims.on_disallowed is OnDisallowed.REFUSE
            assert locked.claims.allow == () and locked.attribution.agent == "a"
            assert store.find(hash_key("fk-" + "o" * 32)) == unlocked
