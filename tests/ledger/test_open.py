"""Opening a ledger by URL, and the one-line errors when that cannot be done."""

from __future__ import annotations

from pathlib import Path

import pytest

from fiscus.errors import StoreError
from fiscus.ledger import open_ledger
from fiscus.ledger.sqlite import SqliteLedger


def test_sqlite_url_creates_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ledger.db"
    with open_ledger(f"sqlite:///{path}") as ledger:
        assert isinstance(ledger, SqliteLedger)
        assert ledger.schema_version() >= 1
    assert path.exists()


def test_sqlite_relative_url_is_relative_to_the_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_ledger("sqlite:///.fiscus/ledger.db"):
        pass
    assert (tmp_path / ".fiscus" / "ledger.db").exists()


def test_sqlite_memory() -> None:
    with open_ledger("sqlite:///:memory:") as ledger:
        assert ledger.schema_version() >= 1


@pytest.mark.parametrize("url", ["mysql://x/y", "ledger.db", "sqlite:///", "sqlite://relative.db"])
def test_unsupported_urls(url: str) -> None:
    with pytest.raises(StoreError) as info:
        open_ledger(url)
    assert "\n" not in str(info.value)


def test_sqlite_path_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open ledger") as info:
        open_ledger(f"sqlite:///{tmp_path}")
    assert "\n" not in str(info.value)


def test_unreachable_postgres_is_one_line_without_password() -> None:
    with pytest.raises(StoreError) as info:
        open_ledger("postgresql://fiscus:s3cret@127.0.0.1:1/ledger?connect_timeout=1")
    message = str(info.value)
    assert "\n" not in message
    assert "s3cret" not in message
    assert "127.0.0.1" in message
