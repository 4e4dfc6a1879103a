"""`open_ledger(url)`: pick the backend from the URL scheme; drivers are imported only when used."""

from __future__ import annotations

from pathlib import Path

from fiscus.errors import StoreError
from fiscus.ledger.base import Ledger


def sqlite_path(url: str) -> str:
    """`sqlite:///rel/path.db` → `rel/path.db`, `sqlite:////abs/path.db` → `/abs/path.db`, `:memory:` kept."""
    path = url.removeprefix("sqlite:///")
    if not path:
        raise StoreError(f"ledger URL {url!r} names no file; use sqlite:///path/ledger.db or sqlite:///:memory:")
    return path


def open_ledger(url: str) -> Ledger:
    """The ledger at `url`, migrated to the current schema. Raises `StoreError` (one line) when the URL is not
    understood or the database cannot be reached."""
    if url.startswith("sqlite:///"):
        from fiscus.ledger.sqlite import SqliteLedger

        return SqliteLedger(sqlite_path(url), url=url)
    if url.startswith(("postgresql://", "postgres://")):
        from fiscus.ledger.postgres import PostgresLedger

        return PostgresLedger(url)
    raise StoreError(f"unsupported ledger URL {url!r}; use sqlite:///path/ledger.db or postgresql://user@host/db")


def default_spill_path(ledger: Ledger) -> Path:
    """Where a writer spills events it could not store: beside a SQLite file, else in `.fiscus/`."""
    path = getattr(ledger, "path", None)
    if path and path != ":memory:":
        return Path(f"{path}.spill.jsonl")
    return Path(".fiscus") / "ledger-spill.jsonl"
