"""What the decision does to a call: partial answers in the SDK's own types, raise, block, downgrade, clamp."""

from __future__ import annotations

import anthropic
import openai
import pytest
from anthropic.types import Message
from openai.types.chat import ChatCompletion, ChatCompletionChunk

import fiscus
from fiscus.events.cost_event import CallStatus

MESSAGES = [{"role": "user", "content": "Summarise the quarter."}]
TINY = [{"name": "tiny", "scope": {"agent": "a"}, "window": "day", "limit": {"usd": "0.0000001"}}]


def test_partial_is_the_sdks_own_completion(openai_client, governed):
    governor, ledger, _, breakers = governed(TINY)
    client = fiscus.wrap(openai_client, agent="a", governor=governor, breakers=breakers)
    with fiscus.session(agent="a") as s:
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert type(reply) is ChatCompletion
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model_extra["fiscus"]["partial"] is True
    assert "budget" in reply.choices[0].message.content and "exhausted" in reply.choices[0].message.content
    assert s.partial and s.outcome == "partial"
    [event] = ledger.events
    assert event.status is CallStatus.PARTIAL and event.total_usd == 0


def test_partial_stream_yields_the_sdks_chunks(openai_client, governed):
    governor, _, _, breakers = governed(TINY)
    client = fiscus.wrap(openai_client, agent="a", governor=governor, breakers=breakers)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert isinstance(stream, openai.Stream)
    chunks = list(stream)
    assert all(type(c) is ChatCompletionChunk for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert "exhausted" in "".join(c.choices[0].delta.content or "" for c in chunks)


def test_anthropic_partial_message_and_stream(anthropic_client, governed):
    governor, _, _, breakers = governed(TINY)
    client = fiscus.wrap(anthropic_client, agent="a", governor=governor, breakers=breakers)
    reply = client.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES)
    assert type(reply) is Message and reply.stop_reason == "end_turn"
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "end_turn" and "exhausted" in final.content[0].text
    assert isinstance(
        client.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES, stream=True),
        anthropic.Stream,
    )


def test_on_exhausted_raise_carries_the_session_state(openai_client, governed):
    governor, _, _, breakers = governed(TINY)
    client = fiscus.wrap(openai_client, agent="a", governor=governor, breakers=breakers, on_exhausted="raise")
    with fiscus.session(workflow="scan") as s, pytest.raises(fiscus.BudgetExhausted) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert caught.value.state["session"] == s.id and caught.value.state["workflow"] == "scan"


def test_block_raises_budget_blocked_with_retry_at(openai_client, governed):
    budgets = [dict(TINY[0], thresholds=[{"at": 1.0, "action": "block"}])]
    governor, ledger, _, breakers = governed(budgets)
    client = fiscus.wrap(openai_client, agent="a", governor=governor, breakers=breakers)
    with pytest.raises(fiscus.BudgetBlocked) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert caught.value.retry_at is not None
    assert ledger.events[0].status is CallStatus.BLOCKED


def test_downgrade_swaps_the_model_and_clamp_sets_max_tokens(openai_client, governed):
    budgets = [
        {
            "name": "down",
            "scope": {"agent": "d"},
            "window": "day",
            "limit": {"usd": 1},
            "thresholds": [{"at": "0.0000001", "action": "downgrade"}, {"at": 1.0, "action": "partial"}],
        }
    ]
    governor, ledger, _, breakers = governed(budgets)
    client = fiscus.wrap(openai_client, agent="d", governor=governor, breakers=breakers)
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=50)
    second = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=50)
    assert second.model == "gpt-4o-mini"
    assert [e.served_model for e in ledger.events] == ["gpt-4o", "gpt-4o-mini"]
    assert ledger.events[1].requested_model == "gpt-4o"


def test_exhaustion_is_the_budgets_refusal_and_opens_no_breaker(openai_client, governed):
    governor, ledger, events, breakers = governed(TINY)
    client = fiscus.wrap(openai_client, agent="a", governor=governor, breakers=breakers)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert "budget for this request is exhausted" in reply.choices[0].message.content
    assert [e.status for e in ledger.events] == [CallStatus.PARTIAL, CallStatus.PARTIAL]
    assert ledger.events[1].total_usd == 0 and ledger.events[1].attribution.agent == "a"
    assert [s["state"] for s in breakers.snapshot() if s["scope"] == "agent:a"] in ([], ["closed"])
    assert not any(type(e).__name__ == "BreakerTripped" for e in events)
