"""Prompt-cache placement end to end: with `optimise.prompt_cache` the second call with the same long system
prompt writes the cache and the third reads it, each priced (and reserved) as such."""

from __future__ import annotations

import fiscus
from fiscus.guards.registry import BreakerRegistry
from tests.sdk.conftest import make_governor
from tests.shaping.test_cache_placement import MESSAGES, PLAYBOOK


def test_a_wrapped_client_places_the_breakpoint(anthropic_client, tmp_path) -> None:
    governor, ledger, _ = make_governor()
    raw = anthropic_client
    client = fiscus.wrap(raw, governor=governor, breakers=BreakerRegistry(postmortem_dir=tmp_path), cache_prompts=True)
    replies = [
        client.messages.create(model="claude-sonnet-4-6", max_tokens=32, system=PLAYBOOK, messages=MESSAGES)
        for _ in range(3)
    ]
    assert replies[1].usage.cache_creation_input_tokens > 1000
    assert replies[2].usage.cache_read_input_tokens > 1000
    writes = [e.usage.cache_write_5m_tokens for e in ledger.events]
    reads = [e.usage.cache_read_tokens for e in ledger.events]
    assert writes[0] == reads[0] == 0 and writes[1] > 1000 and reads[2] > 1000
    assert ledger.events[2].cost.total < ledger.events[0].cost.total < ledger.events[1].cost.total
    plain = fiscus.wrap(raw, governor=governor, breakers=BreakerRegistry(postmortem_dir=tmp_path))
    for _ in range(2):
        reply = plain.messages.create(
            model="claude-sonnet-4-6", max_tokens=32, system=PLAYBOOK + "!", messages=MESSAGES
        )
    assert reply.usage.cache_creation_input_tokens == reply.usage.cache_read_input_tokens == 0  # off by default
