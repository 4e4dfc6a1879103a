"""Budget stores: counters and leased reservations behind one interface (memory, SQLite, Redis)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from fiscus.errors import StoreError
from fiscus.stores.base import (
    Amounts,
    BudgetStore,
    Counter,
    Limits,
    Refusal,
    Reservation,
    ReserveLine,
    SettleOutcome,
)
from fiscus.stores.memory import MemoryStore
from fiscus.stores.sqlite import SqliteStore

ACCEPTED_SCHEMES = ("memory://", "sqlite:///path", "redis://host:port/db", "rediss://host:port/db")


def open_store(url: str, **options: Any) -> BudgetStore:
    """A budget store by URL: `memory://`, `sqlite:///relative.db` or `sqlite:////abs/path.db`,
    `redis://host:port/db?prefix=tenant` (or rediss://). `options` go to the store's constructor."""
    scheme = urlparse(url).scheme.lower()
    if scheme == "memory":
        return MemoryStore(**options)
    if scheme == "sqlite":
        if not url.startswith("sqlite:///") or len(url) == len("sqlite:///"):
            raise StoreError(f"budget store URL {url!r}: write sqlite:///relative/path.db or sqlite:////absolute.db")
        return SqliteStore(url[len("sqlite:///") :], **options)
    if scheme in ("redis", "rediss"):
        from fiscus.stores.redis import RedisStore  # the redis client is only imported when asked for

        return RedisStore.from_url(url, **options)
    raise StoreError(f"budget store URL {url!r}: unknown scheme; accepted: {', '.join(ACCEPTED_SCHEMES)}")


__all__ = [
    "Amounts",
    "BudgetStore",
    "Counter",
    "Limits",
    "MemoryStore",
    "Refusal",
    "Reservation",
    "ReserveLine",
    "SettleOutcome",
    "SqliteStore",
    "open_store",
]
