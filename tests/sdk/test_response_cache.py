"""The exact response cache for wrapped clients: the second identical deterministic call of a task class that
opts in is answered from the cache with the answer object it got before (OpenAI and Anthropic), costs $0 and is
recorded as a cache_hit event with the saving it made; a call at another temperature, a stream or another
class goes to the provider; the entries live beside the governor's store (memory, SQLite) and are shared by
the clients it governs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import fiscus
from fiscus.events.cost_event import CallStatus
from fiscus.governor import Governor
from fiscus.guards.registry import BreakerRegistry
from fiscus.policy.load import parse_policy
from fiscus.pricing.catalogue import PriceCatalogue
from fiscus.stores import open_store
from tests.sdk.conftest import ListLedger

RULES = {"response_cache": {"triage": {"ttl": "10m", "max_entries": 50}, "notes": {"any_temperature": True}}}
ASK: list[dict[str, Any]] = [{"role": "user", "content": "Ticket 4: the invoice shows the wrong VAT. Queue?"}]


def _governor(url: str) -> tuple[Governor, ListLedger]:
    ledger = ListLedger()
    governor = Governor(policy=parse_policy(RULES), store=open_store(url), catalogue=PriceCatalogue(), ledger=ledger)
    return governor, ledger


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_repeated_call_is_answered_from_the_cache(openai_client, anthropic_client, tmp_path: Path, kind: str) -> None:
    governor, ledger = _governor("memory://" if kind == "memory" else f"sqlite:///{tmp_path}/budgets.db")
    breakers = BreakerRegistry(postmortem_dir=tmp_path / "pm")
    gpt = fiscus.wrap(openai_client, task_class="triage", governor=governor, breakers=breakers)
    other = fiscus.wrap(openai_client, task_class="triage", governor=governor, breakers=breakers)
    first = gpt.chat.completions.create(model="gpt-4o-mini", messages=ASK, max_tokens=30, temperature=0)
    again = other.chat.completions.create(model="gpt-4o-mini", messages=ASK, max_tokens=30, temperature=0)
    assert again.choices[0].message.content == first.choices[0].message.content
    assert again.usage is not None and again.usage.total_tokens == first.usage.total_tokens  # type: ignore[union-attr]
    gpt.chat.completions.create(model="gpt-4o-mini", messages=ASK, max_tokens=30, temperature=0.5)  # not cached
    streamed = gpt.chat.completions.create(model="gpt-4o-mini", messages=ASK, max_tokens=30, temperature=0, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    claude = fiscus.wrap(anthropic_client, task_class="notes", governor=governor, breakers=breakers)
    one = claude.messages.create(model="claude-haiku-4-5", max_tokens=30, messages=ASK)
    two = claude.messages.create(model="claude-haiku-4-5", max_tokens=30, messages=ASK)
    assert two.content[0].text == one.content[0].text and two.id == one.id  # type: ignore[union-attr]
    governor.close()
    events = ledger.events
    hits = [e for e in events if e.status is CallStatus.CACHE_HIT]
    paid = [e for e in events if e.status is CallStatus.OK]
    assert len(hits) == 2 and len(paid) == 4
    for hit, model in zip(hits, ("gpt-4o-mini", "claude-haiku-4-5"), strict=True):
        original = next(e for e in paid if e.requested_model == model)
        assert hit.requested_model == model and hit.cost.total == 0 and hit.usage.total_tokens == 0
        assert hit.saved is not None and hit.saved.response_cache == hit.ungoverned_usd == original.cost.total > 0
