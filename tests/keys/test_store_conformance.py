"""One suite for every key store: SQLite and PostgreSQL must behave the same."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fiscus.attribution import Attribution
from fiscus.errors import StoreError
from fiscus.keys import KeyClaims, KeyRing, KeyStore, OnDisallowed, VirtualKey, hash_key, open_key_store


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/nested/keys.db"
    else:
        url = request.getfixturevalue("postgres_url")
    opened = open_key_store(url)
    yield opened
    opened.close()


def _key(key_id: str, secret: str, **attribution: str) -> VirtualKey:
    return VirtualKey(
        id=key_id,
        key_hash=hash_key(secret),
        prefix=secret[:8],
        attribution=Attribution(api_key=key_id, **attribution),
        created_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        name="ci",
        claims=KeyClaims.of({"agent": ["research-*", "planner"], "task_class": ["summarise"]}, "ignore"),
    )


def test_add_find_get_round_trip(store: KeyStore) -> None:
    key = _key("vk_1", "fk-" + "a" * 32, agent="triage", team="support", environment="prod", tenant="acme")
    store.add(key)
    found = store.find(hash_key("fk-" + "a" * 32))
    assert found == key
    assert store.get("vk_1") == key
    assert found.attribution.api_key == "vk_1"
    assert found.attribution.tenant == "acme"
    assert found.name == "ci" and not found.revoked
    assert found.claims.patterns("agent") == ("research-*", "planner")
    assert found.claims.on_disallowed is OnDisallowed.IGNORE


def test_unknown_hash_and_id_are_none(store: KeyStore) -> None:
    assert store.find(hash_key("fk-" + "z" * 32)) is None
    assert store.get("vk_missing") is None
    assert store.revoke("vk_missing", datetime.now(UTC)) is None


def test_list_is_oldest_first(store: KeyStore) -> None:
    first = _key("vk_b", "fk-" + "b" * 32, agent="x", team="t", environment="dev")
    second = VirtualKey(**{**_fields(_key("vk_a", "fk-" + "c" * 32)), "created_at": first.created_at + timedelta(1)})
    store.add(second)
    store.add(first)
    assert [k.id for k in store.list()] == ["vk_b", "vk_a"]


def test_revoke_keeps_first_time(store: KeyStore) -> None:
    store.add(_key("vk_r", "fk-" + "r" * 32, agent="x", team="t", environment="dev"))
    at = datetime(2026, 3, 2, tzinfo=UTC)
    revoked = store.revoke("vk_r", at)
    assert revoked is not None and revoked.revoked_at == at
    again = store.revoke("vk_r", at + timedelta(days=1))
    assert again is not None and again.revoked_at == at
    assert store.find(hash_key("fk-" + "r" * 32)).revoked


def test_duplicate_id_is_a_store_error(store: KeyStore) -> None:
    store.add(_key("vk_d", "fk-" + "d" * 32))
    with pytest.raises(StoreError):
        store.add(_key("vk_d", "fk-" + "e" * 32))


def test_key_ring_end_to_end(store: KeyStore) -> None:
    ring = KeyRing(store)
    secret, key = ring.create(agent="triage", team="support", environment="prod", workflow="refund")
    assert secret.startswith("fk-") and len(secret) == 35
    assert secret not in repr(key) and key.key_hash == hash_key(secret)
    assert ring.verify(secret) == key
    assert [k.id for k in ring.list()] == [key.id]
    ring.revoke(key.id)
    assert ring.verify(secret) is None


def test_set_claims_replaces_the_allow_list(store: KeyStore) -> None:
    ring = KeyRing(store)
    secret, key = ring.create(agent="research-main", team="lab", environment="prod")
    assert key.claims == KeyClaims() and ring.verify(secret) == key
    changed = ring.set_claims(key.id, KeyClaims.of({"agent": ["research-*"]}))
    assert changed.claims.patterns("agent") == ("research-*",) and changed.claims.on_disallowed == "refuse"
    assert ring.verify(secret) == changed  # the cache forgot the old record
    assert store.set_claims("vk_missing", KeyClaims()) is None


def _fields(key: VirtualKey) -> dict[str, object]:
    return {name: getattr(key, name) for name in VirtualKey.__slots__}


def test_unsupported_url() -> None:
    with pytest.raises(StoreError, match=r"key store URL .*unknown scheme"):
        open_key_store("mysql://x")
    with pytest.raises(StoreError, match="write sqlite:///relative"):
        open_key_store("sqlite:///")
