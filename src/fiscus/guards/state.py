"""Where breaker state is shared: `BreakerStateStore`, one implementation per URL.

`memory://` (one process, tests), `sqlite:///path.db` (processes on one host: the embedded deployment) and
`redis://host:port/db?prefix=p` (gateway workers on many hosts). A store keeps the newest `BreakerRecord` per
scope by `since`, so a late write of an older trip cannot undo a newer close. The SQLite and Redis stores are
imported only when their URL is opened, so the guards stay free of drivers until one is asked for.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from fiscus.backends import Backend, Backends
from fiscus.guards.record import BreakerRecord

ACCEPTED = ("memory://", "sqlite:///path.db", "redis://host:port/db?prefix=p", "rediss://…")


class BreakerStateStore(ABC):
    """The newest record per breaker scope. Failures raise `StoreError`."""

    url: str = ""

    @abstractmethod
    def save(self, record: BreakerRecord) -> bool:
        """Keep `record` unless the store holds a newer one (by `since`) for its scope; True if kept."""

    @abstractmethod
    def load_all(self) -> list[BreakerRecord]:
        """Every scope's record."""

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release connections."""


class MemoryBreakerState(BreakerStateStore):
    """Records in this process only; share one instance between registries to share state."""

    url = "memory://"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, BreakerRecord] = {}

    def save(self, record: BreakerRecord) -> bool:
        with self._lock:
            held = self._records.get(record.scope)
            if held is not None and held.since >= record.since:
                return False
            self._records[record.scope] = record
            return True

    def load_all(self) -> list[BreakerRecord]:
        with self._lock:
            return list(self._records.values())


# The SQLite and Redis states (and their drivers) are imported only when their URL is opened.
BREAKER_STATES: Backends[BreakerStateStore] = Backends(
    "breaker state",
    {
        "memory": Backend("fiscus.guards.state:MemoryBreakerState", "nothing"),
        "sqlite": Backend("fiscus.stores.breaker_state_sqlite:SqliteBreakerState", "path"),
        "redis": Backend("fiscus.stores.breaker_state_redis:RedisBreakerState.from_url", "url"),
        "rediss": Backend("fiscus.stores.breaker_state_redis:RedisBreakerState.from_url", "url"),
    },
    accepted=ACCEPTED,
)


def open_breaker_state(url: str, **options: Any) -> BreakerStateStore:
    """A breaker state store by URL (see the module's docstring)."""
    return BREAKER_STATES.open(url, **options)


def state_url_beside(budget_store: str) -> str:
    """Where breaker state goes when the config does not say: beside the budget store. A SQLite store gets
    `breakers.db` in its folder, Redis the same server and prefix; a memory store keeps breakers in memory too."""
    scheme = urlparse(budget_store).scheme.lower()
    if scheme == "sqlite" and budget_store.startswith("sqlite:///") and len(budget_store) > len("sqlite:///"):
        return f"sqlite:///{Path(budget_store[len('sqlite:///') :]).parent / 'breakers.db'}"
    if scheme in ("redis", "rediss"):
        return budget_store
    return "memory://"


def describe(records: list[BreakerRecord], *, now: float) -> list[dict[str, Any]]:
    """Records as a reader shows them: an open breaker past its cooldown end is half-open."""
    rows = []
    for record in sorted(records, key=lambda r: (r.scope != "global", r.scope)):
        if record.scope.startswith("~"):  # a note to the processes (the published policy version)
            continue
        state = record.state
        if state == "open" and record.reopens_at is not None and now >= record.reopens_at:
            state = "half_open"
        rows.append(
            {
                "scope": record.scope,
                "state": state,
                "since": record.since,
                "reason": record.reason,
                "message": record.message,
                "reopens_at": record.reopens_at,
                "trips": record.trips,
            }
        )
    return rows
