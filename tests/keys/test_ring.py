"""KeyRing caching: fast repeat verification, revocation visible within the TTL, bounded negative cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from fiscus.errors import FiscusError
from fiscus.keys import KeyNotFoundError, KeyRing, open_key_store
from fiscus.keys.sqlite import SqliteKeyStore


class CountingStore(SqliteKeyStore):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.finds = 0

    def find(self, key_hash: str):  # type: ignore[no-untyped-def]
        self.finds += 1
        return super().find(key_hash)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> CountingStore:
    return CountingStore(str(tmp_path / "keys.db"))


def test_verified_keys_are_cached_until_ttl(store: CountingStore) -> None:
    clock = Clock()
    ring = KeyRing(store, ttl_s=5.0, clock=clock)
    secret, key = ring.create(agent="a", team="t", environment="prod")
    for _ in range(3):
        assert ring.verify(secret) == key
    assert store.finds == 1
    clock.now += 5.1
    assert ring.verify(secret) == key
    assert store.finds == 2


def test_revocation_elsewhere_takes_effect_after_ttl(store: CountingStore, tmp_path: Path) -> None:
    clock = Clock()
    gateway = KeyRing(store, ttl_s=5.0, clock=clock)
    secret, key = gateway.create(agent="a", team="t", environment="prod")
    assert gateway.verify(secret) is not None
    KeyRing(open_key_store(f"sqlite:///{tmp_path}/keys.db")).revoke(key.id)  # the CLI, another process
    assert gateway.verify(secret) is not None  # still cached
    clock.now += 5.1
    assert gateway.verify(secret) is None


def test_local_revocation_is_immediate(store: CountingStore) -> None:
    ring = KeyRing(store)
    secret, key = ring.create(agent="a", team="t", environment="prod")
    assert ring.verify(secret) is not None
    ring.revoke(key.id)
    assert ring.verify(secret) is None


def test_malformed_keys_never_reach_the_store(store: CountingStore) -> None:
    ring = KeyRing(store)
    for bogus in ("", "sk-live-123", "fk-short", "fk-" + "x" * 40):
        assert ring.verify(bogus) is None
    assert store.finds == 0


def test_unknown_keys_are_negatively_cached_and_bounded(store: CountingStore) -> None:
    clock = Clock()
    ring = KeyRing(store, negative_ttl_s=1.0, max_entries=10, clock=clock)
    unknown = "fk-" + "q" * 32
    assert ring.verify(unknown) is None
    assert ring.verify(unknown) is None
    assert store.finds == 1
    for i in range(50):
        ring.verify("fk-" + f"{i:032d}")
    assert len(ring._cache) == 10


def test_key_created_elsewhere_works_after_negative_ttl(store: CountingStore) -> None:
    clock = Clock()
    ring = KeyRing(store, negative_ttl_s=1.0, clock=clock)
    other = KeyRing(store)
    assert ring.verify("fk-" + "n" * 32) is None
    secret, _ = other.create(agent="a", team="t", environment="prod")
    assert ring.verify(secret) is not None  # never seen before: goes to the store


async def test_averify_uses_cache_and_store(store: CountingStore) -> None:
    ring = KeyRing(store)
    secret, key = ring.create(agent="a", team="t", environment="prod")
    assert await ring.averify(secret) == key
    assert await ring.averify(secret) == key
    assert store.finds == 1
    assert await ring.averify("nope") is None


def test_create_requires_agent_team_env(store: CountingStore) -> None:
    with pytest.raises(FiscusError, match="non-empty team"):
        KeyRing(store).create(agent="a", team=" ", environment="prod")


def test_revoke_unknown_id(store: CountingStore) -> None:
    with pytest.raises(KeyNotFoundError, match="no virtual key with id 'vk_x'"):
        KeyRing(store).revoke("vk_x")
