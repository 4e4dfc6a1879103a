"""The response cache's store, one conformance suite for each backend (memory, SQLite, Redis): entries by
namespace and key, a TTL, a bound on the entries of each namespace (the oldest written goes first), and the
same store reachable from a second handle on the same URL (except memory, which is one process's)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fiscus.errors import StoreError
from fiscus.stores.response_cache import ResponseCacheStore, open_response_cache
from tests.stores.conftest import url_for


@pytest.fixture
def cache(store_url: str) -> Iterator[ResponseCacheStore]:
    opened = open_response_cache(store_url)
    yield opened
    opened.close()


def test_put_get_replace_and_namespaces(cache: ResponseCacheStore) -> None:
    assert cache.get("triage", "k1") is None
    cache.put("triage", "k1", b"first\n\x00answer", ttl_s=60, max_entries=10)
    assert cache.get("triage", "k1") == b"first\n\x00answer"
    cache.put("triage", "k1", b"second", ttl_s=60, max_entries=10)
    assert cache.get("triage", "k1") == b"second"
    assert cache.get("other", "k1") is None  # another task class's namespace
    assert cache.count("triage") == 1 and cache.count("other") == 0


def test_entries_expire_after_their_ttl(cache: ResponseCacheStore) -> None:
    cache.put("triage", "short", b"gone soon", ttl_s=0.3, max_entries=10)
    cache.put("triage", "long", b"kept", ttl_s=60, max_entries=10)
    assert cache.get("triage", "short") == b"gone soon"
    time.sleep(0.45)
    assert cache.get("triage", "short") is None
    assert cache.get("triage", "long") == b"kept"
    assert cache.count("triage") == 1


def test_each_namespace_is_bounded_oldest_first(cache: ResponseCacheStore) -> None:
    for n in range(5):
        cache.put("triage", f"k{n}", f"v{n}".encode(), ttl_s=60, max_entries=3)
        time.sleep(0.002)  # distinct write times
    cache.put("other", "x", b"x", ttl_s=60, max_entries=3)
    assert [cache.get("triage", f"k{n}") for n in range(5)] == [None, None, b"v2", b"v3", b"v4"]
    assert cache.count("triage") == 3 and cache.get("other", "x") == b"x"


def test_async_access(cache: ResponseCacheStore) -> None:
    async def go() -> bytes | None:
        await cache.aput("triage", "a", b"async", ttl_s=60, max_entries=5)
        return await cache.aget("triage", "a")

    assert asyncio.run(go()) == b"async"


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def test_shared_through_the_backend(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url = url_for(kind, request, tmp_path)  # memory:// is one process's store: not shared
    first, second = open_response_cache(url), open_response_cache(url)
    try:
        first.put("triage", "shared", b"seen by both", ttl_s=60, max_entries=5)
        assert second.get("triage", "shared") == b"seen by both"
    finally:
        first.close()
        second.close()


def test_unknown_scheme_is_one_clear_error() -> None:
    with pytest.raises(StoreError, match="response cache URL 'ftp://x': unknown scheme"):
        open_response_cache("ftp://x")


def test_beside_an_open_budget_store(store_url: str) -> None:
    """The SDK opens the cache beside its governor's store: the same file, or Redis server and prefix."""
    from fiscus.stores import open_store
    from fiscus.stores.response_cache import response_cache_beside

    budget = open_store(store_url)
    beside = response_cache_beside(budget)
    try:
        beside.put("triage", "k", b"kept", ttl_s=60, max_entries=5)
        assert beside.get("triage", "k") == b"kept"
        if not store_url.startswith("memory"):  # one process's memory has no URL to reach it by
            by_url = open_response_cache(store_url)
            assert by_url.get("triage", "k") == b"kept"
            by_url.close()
    finally:
        beside.close()
        budget.close()
