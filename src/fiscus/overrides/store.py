"""Where overrides are kept: one small interface, SQLite and PostgreSQL behind it, chosen by URL — the same URL as
the virtual keys (`keys:` in fiscus.yaml), so one database holds who may call and who may pass."""

from __future__ import annotations

import abc
from datetime import datetime

from fiscus.backends import Backend, Backends
from fiscus.overrides.model import Override


class OverrideStore(abc.ABC):
    """Synchronous and thread-safe: the CLI calls it directly, the gateway from a worker thread when its copy of
    the active overrides is stale."""

    @abc.abstractmethod
    def add(self, override: Override) -> None: ...

    @abc.abstractmethod
    def get(self, override_id: str) -> Override | None: ...

    @abc.abstractmethod
    def list(self, *, active_at: datetime | None = None) -> list[Override]:
        """Every override, oldest first; with `active_at`, only those not revoked and not expired then."""

    @abc.abstractmethod
    def revoke(self, override_id: str, at: datetime) -> Override | None:
        """Mark revoked (the first revocation time is kept); None if there is no such override."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> OverrideStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


OVERRIDE_STORES: Backends[OverrideStore] = Backends(
    "override store",
    {
        "sqlite": Backend("fiscus.overrides.sqlite:SqliteOverrideStore", "path"),
        "postgresql": Backend("fiscus.overrides.postgres:PostgresOverrideStore", "url"),
        "postgres": Backend("fiscus.overrides.postgres:PostgresOverrideStore", "url"),
    },
    accepted=("sqlite:///path/keys.db", "postgresql://user@host/db"),
)


def open_override_store(url: str) -> OverrideStore:
    """`sqlite:///relative.db`, `sqlite:////absolute.db` or `postgresql://user@host/db`."""
    return OVERRIDE_STORES.open(url)
