"""Budget stores: counters and leased reservations behind one interface (memory, SQLite, Redis)."""

from __future__ import annotations

from typing import Any

from fiscus.backends import Backend, Backends
from fiscus.engine.ports import Amounts, Counter, Limits, Refusal, Reservation, ReserveLine, SettleOutcome
from fiscus.stores.base import BudgetStore, OutboxEntry
from fiscus.stores.memory import MemoryStore
from fiscus.stores.sqlite import SqliteStore

ACCEPTED_SCHEMES = ("memory://", "sqlite:///path", "redis://host:port/db", "rediss://host:port/db")

# The Redis store (and its client) is imported only when a redis:// URL is opened.
BUDGET_STORES: Backends[BudgetStore] = Backends(
    "budget store",
    {
        "memory": Backend("fiscus.stores.memory:MemoryStore", "nothing"),
        "sqlite": Backend("fiscus.stores.sqlite:SqliteStore", "path"),
        "redis": Backend("fiscus.stores.redis:RedisStore.from_url", "url"),
        "rediss": Backend("fiscus.stores.redis:RedisStore.from_url", "url"),
    },
    accepted=ACCEPTED_SCHEMES,
)


def open_store(url: str, **options: Any) -> BudgetStore:
    """A budget store by URL: `memory://`, `sqlite:///relative.db` or `sqlite:////abs/path.db`,
    `redis://host:port/db?prefix=tenant` (or rediss://). `options` go to the store's constructor."""
    return BUDGET_STORES.open(url, **options)


__all__ = [
    "BUDGET_STORES",
    "Amounts",
    "BudgetStore",
    "Counter",
    "Limits",
    "MemoryStore",
    "OutboxEntry",
    "Refusal",
    "Reservation",
    "ReserveLine",
    "SettleOutcome",
    "SqliteStore",
    "open_store",
]
