"""Choosing a budget store by URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from fiscus.errors import StoreError
from fiscus.stores import MemoryStore, SqliteStore, open_store


def test_memory_url_gives_a_memory_store() -> None:
    assert isinstance(open_store("memory://"), MemoryStore)


def test_sqlite_url_gives_a_store_on_that_file(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "budgets.db"
    store = open_store(f"sqlite:///{path}")
    assert isinstance(store, SqliteStore)
    assert path.exists()
    store.close()


@pytest.mark.parametrize("url", ["postgres://localhost/db", "mongodb://x", "budgets.db"])
def test_unknown_scheme_names_the_accepted_ones(url: str) -> None:
    with pytest.raises(StoreError, match=r"unknown scheme; accepted: memory://, sqlite:///path, redis://"):
        open_store(url)


def test_sqlite_url_without_a_path_is_refused() -> None:
    with pytest.raises(StoreError, match=r"sqlite:///relative/path\.db"):
        open_store("sqlite://")


def test_unwritable_sqlite_path_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(StoreError, match="SQLite store"):
        open_store(f"sqlite:///{tmp_path / 'file' / 'budgets.db'}")
