"""Every store test runs against each backend: memory, SQLite (a file under tmp_path) and Redis (a unique prefix)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fiscus.stores import BudgetStore, open_store

KINDS = ["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)]


def url_for(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'budgets.db'}"
    redis_url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    return f"{redis_url}?prefix={prefix}"


@pytest.fixture(params=KINDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return url_for(request.param, request, tmp_path)


@pytest.fixture
def store(store_url: str) -> Iterator[BudgetStore]:
    opened = open_store(store_url)
    yield opened
    opened.close()
