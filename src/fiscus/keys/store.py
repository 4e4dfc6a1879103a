"""Where virtual keys are kept: one small interface, SQLite and PostgreSQL behind it, chosen by URL."""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any

import orjson

from fiscus.attribution import Attribution
from fiscus.backends import Backend, Backends
from fiscus.keys.claims import KeyClaims
from fiscus.keys.model import VirtualKey

# Attribution dimensions a key itself may carry (the rest come per request).
KEY_DIMENSIONS = ("organization", "team", "agent", "workflow", "tenant", "user", "environment")


class KeyStore(abc.ABC):
    """Synchronous and thread-safe: the CLI calls it directly, the gateway from a worker thread on cache miss."""

    @abc.abstractmethod
    def add(self, key: VirtualKey) -> None:
        """Store a new key; ids and hashes are unique."""

    @abc.abstractmethod
    def find(self, key_hash: str) -> VirtualKey | None:
        """The key with this hash, revoked or not."""

    @abc.abstractmethod
    def get(self, key_id: str) -> VirtualKey | None: ...

    @abc.abstractmethod
    def list(self) -> list[VirtualKey]:
        """Every key, oldest first."""

    @abc.abstractmethod
    def revoke(self, key_id: str, at: datetime) -> VirtualKey | None:
        """Mark revoked (the first revocation time is kept); None if there is no such key."""

    @abc.abstractmethod
    def set_claims(self, key_id: str, claims: KeyClaims) -> VirtualKey | None:
        """Replace what the key may claim; None if there is no such key."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def attribution_json(attribution: Attribution) -> str:
    return orjson.dumps({k: attribution.get(k) for k in KEY_DIMENSIONS if attribution.get(k) is not None}).decode()


def allow_json(claims: KeyClaims) -> str:
    return orjson.dumps(claims.to_dict()).decode()


def key_from_row(row: tuple[Any, ...], parse_time: Any) -> VirtualKey:
    """(id, key_hash, prefix, name, attribution_json, created_at, revoked_at, allow_json, on_disallowed) ->
    VirtualKey."""
    key_id, key_hash, prefix, name, attribution, created, revoked, allow, on_disallowed = row
    data = orjson.loads(attribution)
    return VirtualKey(
        id=key_id,
        key_hash=key_hash,
        prefix=prefix,
        name=name,
        attribution=Attribution(api_key=key_id, **data),
        created_at=parse_time(created),
        revoked_at=parse_time(revoked) if revoked is not None else None,
        claims=KeyClaims.of(orjson.loads(allow) if allow else None, on_disallowed or "refuse"),
    )


# The backends (and psycopg) are imported only when their URL is opened.
KEY_STORES: Backends[KeyStore] = Backends(
    "key store",
    {
        "sqlite": Backend("fiscus.keys.sqlite:SqliteKeyStore", "path"),
        "postgresql": Backend("fiscus.keys.postgres:PostgresKeyStore", "url"),
        "postgres": Backend("fiscus.keys.postgres:PostgresKeyStore", "url"),
    },
    accepted=("sqlite:///path/keys.db", "postgresql://user@host/db"),
)


def open_key_store(url: str) -> KeyStore:
    """`sqlite:///relative.db`, `sqlite:////absolute.db` or `postgresql://user@host/db`."""
    return KEY_STORES.open(url)
