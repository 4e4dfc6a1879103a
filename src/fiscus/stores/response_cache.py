"""Where the exact response cache keeps its answers: beside the budget counters, in the budget store's backend
(`memory://`, `sqlite:///path`, `redis://`), behind one small interface with one conformance suite.

Entries are opaque bytes under a hex key (a hash: no prompt text in any key), grouped in namespaces (the task
class), each bounded in entries — the oldest written goes first — and each entry expiring after its TTL.
"""

from __future__ import annotations

import abc
import asyncio
import sqlite3
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from fiscus.backends import Backend, Backends
from fiscus.errors import StoreError
from fiscus.sqlite_wal import connect_wal


class ResponseCacheStore(abc.ABC):
    """get / put / clear of byte entries with a TTL and a per-namespace bound on the number of entries."""

    @abc.abstractmethod
    def get(self, namespace: str, key: str, *, now: float | None = None) -> bytes | None:
        """The entry, or None when absent or expired."""

    @abc.abstractmethod
    def put(
        self, namespace: str, key: str, value: bytes, *, ttl_s: float, max_entries: int, now: float | None = None
    ) -> None:
        """Store (or replace) the entry for `ttl_s` seconds; beyond `max_entries` in the namespace, the oldest
        written entries are dropped."""

    @abc.abstractmethod
    def count(self, namespace: str, *, now: float | None = None) -> int:
        """Live entries in the namespace."""

    async def aget(self, namespace: str, key: str) -> bytes | None:
        return await asyncio.to_thread(self.get, namespace, key)

    async def aput(self, namespace: str, key: str, value: bytes, *, ttl_s: float, max_entries: int) -> None:
        await asyncio.to_thread(self.put, namespace, key, value, ttl_s=ttl_s, max_entries=max_entries)

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class MemoryResponseCache(ResponseCacheStore):
    """One process's cache (the `memory://` store's): an insertion-ordered dict per namespace."""

    def __init__(self) -> None:
        self._spaces: dict[str, OrderedDict[str, tuple[float, bytes]]] = {}
        self._lock = threading.Lock()

    def get(self, namespace: str, key: str, *, now: float | None = None) -> bytes | None:
        now = time.time() if now is None else now
        with self._lock:
            space = self._spaces.get(namespace)
            found = space.get(key) if space is not None else None
            if found is None:
                return None
            if found[0] <= now:
                del space[key]  # type: ignore[union-attr]
                return None
            return found[1]

    def put(
        self, namespace: str, key: str, value: bytes, *, ttl_s: float, max_entries: int, now: float | None = None
    ) -> None:
        now = time.time() if now is None else now
        with self._lock:
            space = self._spaces.setdefault(namespace, OrderedDict())
            space.pop(key, None)
            space[key] = (now + ttl_s, value)
            while len(space) > max_entries:
                space.popitem(last=False)

    def count(self, namespace: str, *, now: float | None = None) -> int:
        now = time.time() if now is None else now
        with self._lock:
            return sum(1 for expires, _ in self._spaces.get(namespace, {}).values() if expires > now)

    async def aget(self, namespace: str, key: str) -> bytes | None:
        return self.get(namespace, key)

    async def aput(self, namespace: str, key: str, value: bytes, *, ttl_s: float, max_entries: int) -> None:
        self.put(namespace, key, value, ttl_s=ttl_s, max_entries=max_entries)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS response_cache (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    written REAL NOT NULL,
    expires REAL NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (namespace, key)
);
CREATE INDEX IF NOT EXISTS response_cache_age ON response_cache (namespace, written);
"""


class SqliteResponseCache(ResponseCacheStore):
    """A table in the SQLite budget store's file, shared by the processes on the host."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 10_000) -> None:
        self._path = str(path)
        self._lock = threading.Lock()
        try:
            if self._path != ":memory:":
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            self._db = connect_wal(self._path, busy_timeout_ms=busy_timeout_ms)
            self._db.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"SQLite response cache {self._path}: {exc}") from exc

    def _run(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite response cache {self._path}: {exc}") from exc

    def get(self, namespace: str, key: str, *, now: float | None = None) -> bytes | None:
        now = time.time() if now is None else now
        rows = self._run(
            "SELECT value FROM response_cache WHERE namespace = ? AND key = ? AND expires > ?", (namespace, key, now)
        )
        return bytes(rows[0][0]) if rows else None

    def put(
        self, namespace: str, key: str, value: bytes, *, ttl_s: float, max_entries: int, now: float | None = None
    ) -> None:
        now = time.time() if now is None else now
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.execute(
                        "INSERT OR REPLACE INTO response_cache (namespace, key, written, expires, value) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (namespace, key, now, now + ttl_s, value),
                    )
                    db.execute("DELETE FROM response_cache WHERE namespace = ? AND expires <= ?", (namespace, now))
                    db.execute(
                        "DELETE FROM response_cache WHERE namespace = ? AND key IN (SELECT key FROM response_cache "
                        "WHERE namespace = ? ORDER BY written DESC, key LIMIT -1 OFFSET ?)",
                        (namespace, namespace, max_entries),
                    )
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite response cache {self._path}: {exc}") from exc

    def count(self, namespace: str, *, now: float | None = None) -> int:
        now = time.time() if now is None else now
        rows = self._run("SELECT COUNT(*) FROM response_cache WHERE namespace = ? AND expires > ?", (namespace, now))
        return int(rows[0][0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


RESPONSE_CACHES: Backends[ResponseCacheStore] = Backends(
    "response cache",
    {
        "memory": Backend("fiscus.stores.response_cache:MemoryResponseCache", "nothing"),
        "sqlite": Backend("fiscus.stores.response_cache:SqliteResponseCache", "path"),
        "redis": Backend("fiscus.stores.response_cache_redis:RedisResponseCache.from_url", "url"),
        "rediss": Backend("fiscus.stores.response_cache_redis:RedisResponseCache.from_url", "url"),
    },
    accepted=("memory://", "sqlite:///path", "redis://host:port/db", "rediss://host:port/db"),
)


def response_cache_beside(store: object) -> ResponseCacheStore:
    """The response cache in the backend of an open budget store (the in-process SDK's governor): the same
    SQLite file, the same Redis server and prefix, or this process's memory."""
    from fiscus.stores.sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        return SqliteResponseCache(store._path)
    if type(store).__name__ == "RedisStore" and getattr(store, "_client", None) is not None:
        from fiscus.stores.response_cache_redis import RedisResponseCache

        tag = str(store._leases).split(":", 1)[0]  # type: ignore[attr-defined]  # the store's `{prefix}` hash tag
        return RedisResponseCache(store._client, prefix=tag)  # type: ignore[attr-defined]
    return MemoryResponseCache()


def open_response_cache(url: str) -> ResponseCacheStore:
    """The response cache in the backend of the budget store at `url` (the same file, or server and prefix)."""
    return RESPONSE_CACHES.open(url)
