"""The ledger a reporting command reads (`--ledger`, else the config's)."""

from __future__ import annotations

from pathlib import Path

from fiscus.config import load_config
from fiscus.errors import StoreError


def ledger_url(ledger: str | None, config: Path | None) -> str:
    """The ledger a report reads: `--ledger`, else the config's; an embedded one that does not exist is an error
    (opening it would create an empty one)."""
    from fiscus.ledger.open import sqlite_path

    url = ledger or load_config(config).ledger
    if url.startswith("sqlite:///") and sqlite_path(url) != ":memory:" and not Path(sqlite_path(url)).exists():
        raise StoreError(f"no ledger at {sqlite_path(url)} (nothing recorded yet, or pass --ledger / --config)")
    return url
