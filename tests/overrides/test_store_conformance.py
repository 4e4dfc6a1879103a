"""One suite for every override store (SQLite and PostgreSQL), and the book over it: grants need a target, a
reason and an end in the future; what is in force for a key follows grants, expiry and revocation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fiscus.errors import StoreError
from fiscus.overrides import (
    Override,
    OverrideBook,
    OverrideError,
    OverrideNotFoundError,
    OverrideStore,
    open_override_store,
)

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OverrideStore]:
    url = f"sqlite:///{tmp_path}/keys.db" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    opened = open_override_store(url)
    yield opened
    opened.close()


class Clock:
    def __init__(self) -> None:
        self.now, self.mono = T0, 0.0

    def wall(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono


def _override(override_id: str, **kw: object) -> Override:
    fields: dict[str, object] = {"reason": "incident 42", "created_at": T0, "expires_at": T0 + timedelta(hours=1)}
    return Override(id=override_id, **{**fields, **kw})  # type: ignore[arg-type]


def test_add_get_list_revoke(store: OverrideStore) -> None:
    key = _override("ov_1", key_id="vk_1", granted_by="ana")
    budget = _override("ov_2", budget="org-monthly", created_at=T0 + timedelta(minutes=1))
    store.add(key)
    store.add(budget)
    assert store.get("ov_1") == key and store.get("ov_missing") is None
    assert [o.id for o in store.list()] == ["ov_1", "ov_2"]
    assert [o.id for o in store.list(active_at=T0 + timedelta(seconds=30))] == ["ov_1"]  # ov_2 not yet
    assert store.list(active_at=T0 + timedelta(hours=2)) == []  # both expired
    revoked = store.revoke("ov_1", T0 + timedelta(minutes=5))
    assert revoked is not None and revoked.revoked_at == T0 + timedelta(minutes=5)
    assert store.revoke("ov_1", T0 + timedelta(minutes=9)).revoked_at == T0 + timedelta(minutes=5)  # type: ignore[union-attr]
    assert [o.id for o in store.list(active_at=T0 + timedelta(minutes=10))] == ["ov_2"]
    assert store.revoke("ov_missing", T0) is None


def test_the_book_answers_what_is_in_force_for_a_key(store: OverrideStore) -> None:
    clock = Clock()
    book = OverrideBook(store, ttl_s=2.0, clock=clock.monotonic, now=clock.wall)
    assert book.grants_for("vk_1") == ()
    mine = book.grant(key_id="vk_1", reason="  quarter  close ", lasting=timedelta(minutes=30), granted_by="ana")
    everyone = book.grant(budget="org-monthly", reason="launch", until=T0 + timedelta(hours=2))
    assert mine.reason == "quarter close" and mine.expires_at == T0 + timedelta(minutes=30)
    assert set(book.grants_for("vk_1")) == {("*", mine.id), ("org-monthly", everyone.id)}
    assert book.grants_for("vk_2") == (("org-monthly", everyone.id),)
    other = OverrideBook(store, ttl_s=2.0, clock=clock.monotonic, now=clock.wall)  # another gateway
    assert set(other.grants_for("vk_1")) == set(book.grants_for("vk_1"))
    book.revoke(mine.id)
    assert book.grants_for("vk_1") == (("org-monthly", everyone.id),)
    assert len(other.grants_for("vk_1")) == 2  # within its refresh time
    clock.mono += 2.0
    assert other.grants_for("vk_1") == (("org-monthly", everyone.id),)
    clock.now = T0 + timedelta(hours=2)  # expired between two refreshes: no longer in force
    assert other.grants_for("vk_1") == ()
    assert {o.id for o in book.list(every=True)} == {mine.id, everyone.id} and book.list() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reason": "x", "lasting": timedelta(hours=1)}, "name exactly one"),
        ({"key_id": "k", "budget": "b", "reason": "x", "lasting": timedelta(hours=1)}, "name exactly one"),
        ({"key_id": "k", "reason": "  ", "lasting": timedelta(hours=1)}, "needs a reason"),
        ({"key_id": "k", "reason": "x"}, "needs an end"),
        ({"key_id": "k", "reason": "x", "until": T0 - timedelta(seconds=1)}, "not in the future"),
        ({"key_id": "k", "reason": "x", "until": datetime(2027, 1, 1)}, "needs a time zone"),
    ],
)
def test_a_grant_needs_a_target_a_reason_and_a_future_end(
    store: OverrideStore, kwargs: dict[str, object], message: str
) -> None:
    clock = Clock()
    with pytest.raises(OverrideError, match=message):
        OverrideBook(store, now=clock.wall).grant(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(OverrideNotFoundError, match="no override with id 'ov_nope'"):
        OverrideBook(store, now=clock.wall).revoke("ov_nope")


def test_unsupported_url() -> None:
    with pytest.raises(StoreError, match=r"override store URL .*unknown scheme"):
        open_override_store("mysql://x")
