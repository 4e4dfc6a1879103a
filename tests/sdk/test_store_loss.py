"""The SDK door behind the store guard: a budget store that lost its state is a clear `StoreUnavailable` under
fail_closed (no call reaches the provider), and rebuilt from the ledger under rebuild, the same answers as the
gateway's."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

import fiscus
from fiscus.errors import StoreUnavailable
from fiscus.governor import Governor
from fiscus.ledger import LedgerWriter, open_ledger
from fiscus.money import to_nanos
from fiscus.policy import parse_policy
from fiscus.pricing import PriceCatalogue
from fiscus.stores import open_store

MESSAGES = [{"role": "user", "content": "Summarise the quarter."}]
DAY = [{"name": "a-day", "scope": {"agent": "a"}, "window": "day", "limit": {"usd": "1"}}]


@pytest.mark.parametrize("policy", ["rebuild", "fail_closed"])
def test_a_lost_store_is_answered_per_policy_in_the_sdk(
    policy: str, openai_client: openai.OpenAI, tmp_path: Path
) -> None:
    ledger = open_ledger(f"sqlite:///{tmp_path}/ledger.db")
    store = open_store(f"sqlite:///{tmp_path}/budgets.db", guarded=True)
    governor = Governor(
        policy=parse_policy({"budgets": DAY}),
        store=store,
        catalogue=PriceCatalogue(),
        ledger=LedgerWriter(ledger, outbox=store),
        on_store_loss=policy,
    )
    governor.guard.start()
    client = fiscus.wrap(openai_client, agent="a", governor=governor)
    for _ in range(5):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20)
    assert governor.ledger.flush(5)  # type: ignore[union-attr]
    spent = sum(to_nanos(e.cost.total) for e in ledger.events())
    with store._transaction() as db:  # type: ignore[attr-defined]  # the counters table emptied
        db.execute("DELETE FROM fiscus_counters")
    if policy == "fail_closed":
        with pytest.raises(StoreUnavailable, match=r"budget store lost its state.*fiscus budgets rebuild"):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20)
        assert len(list(ledger.events())) == 5  # the refused call reached no provider
    else:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20)
        assert governor.ledger.flush(5)  # type: ignore[union-attr]
        (status,) = governor.status()
        assert status.spent.nanos == sum(to_nanos(e.cost.total) for e in ledger.events()) > spent  # rebuilt, +1
    governor.close()
    ledger.close()
