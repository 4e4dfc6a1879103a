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
from fiscus.policy import parse_policy
from fiscus.pricing import PriceCatalogue
from fiscus.stores import open_store

MESSAGES = [{"role": "user", "content": "Summarise the quarter."}]
DAY = [{"name": "a-day", "scope": {"agent": "a"}, "window": "day", "limit": {"usd": "0.0002"}, "thresholds": []}]


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
    served = 0
    while served < 50:
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20)
        if reply.choices[0].finish_reason == "length" and "exhausted" in (reply.choices[0].message.content or ""):
            break
        served += 1
    assert 0 < served < 50
    assert governor.ledger.flush(5)  # type: ignore[union-attr]
    with store._transaction() as db:  # type: ignore[attr-defined]  # the counters table emptied
        db.execute("DELETE FROM fiscus_counters")
    if policy == "fail_closed":
        with pytest.raises(StoreUnavailable, match=r"budget store lost its state.*fiscus budgets rebuild"):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20)
    else:
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20)
        assert "exhausted" in (reply.choices[0].message.content or "")  # rebuilt: still spent, a partial answer
    ok = [e for e in ledger.events() if e.status.value == "ok"]
    assert len(ok) == served  # nothing more reached the provider
    governor.close()
    ledger.close()
