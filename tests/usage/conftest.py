"""Fixture files: responses saved exactly as each provider sends them (tests/usage/data)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture
def load() -> Callable[[str], bytes]:
    def read(name: str) -> bytes:
        return (DATA / name).read_bytes()

    return read


@pytest.fixture(autouse=True)
def heuristic_estimator(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Pin the estimator to chars/4 (an empty tiktoken cache), so estimates are the same on every machine."""
    from fiscus.usage import estimate

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken-cache"))
    estimate._encoder.cache_clear()
    yield
    estimate._encoder.cache_clear()
