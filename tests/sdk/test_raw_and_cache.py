"""`with_raw_response` governed on every client and endpoint; `cache_writes` told to the engine."""

from __future__ import annotations

import pytest
from anthropic.types import Message
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

import fiscus
from fiscus.events.cost_event import CallStatus
from fiscus.governor import CallRequest

MESSAGES = [{"role": "user", "content": "Two words about tides."}]
TINY = [{"name": "tiny", "scope": {"agent": "a"}, "window": "day", "limit": {"usd": "0.0000001"}}]


async def test_async_openai_raw_chat_and_responses(async_openai_client, governed):
    governor, ledger, _, breakers = governed()
    client = fiscus.wrap(async_openai_client, agent="r", governor=governor, breakers=breakers)
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    chat = raw.parse()
    assert type(chat) is ChatCompletion and raw.http_request is not None
    raw = await client.responses.with_raw_response.create(model="gpt-4o-mini", input="hi", max_output_tokens=30)
    response = raw.parse()
    assert type(response) is Response
    first, second = ledger.events
    assert first.usage.output_tokens == chat.usage.completion_tokens and first.total_usd > 0
    assert second.usage.output_tokens == response.usage.output_tokens
    assert {e.attribution.agent for e in ledger.events} == {"r"}


def test_sync_openai_raw_responses(openai_client, governed):
    governor, ledger, _, breakers = governed()
    client = fiscus.wrap(openai_client, governor=governor, breakers=breakers)
    raw = client.responses.with_raw_response.create(model="gpt-4o-mini", input="hi")
    assert ledger.events[0].usage.output_tokens == raw.parse().usage.output_tokens


def test_anthropic_raw_sync(anthropic_client, governed):
    governor, ledger, _, breakers = governed()
    client = fiscus.wrap(anthropic_client, agent="w", governor=governor, breakers=breakers)
    raw = client.messages.with_raw_response.create(model="claude-haiku-4-5", max_tokens=60, messages=MESSAGES)
    message = raw.parse()
    assert type(message) is Message
    [event] = ledger.events
    assert event.provider == "anthropic" and event.usage.output_tokens == message.usage.output_tokens


async def test_anthropic_raw_async(async_anthropic_client, governed):
    governor, ledger, _, breakers = governed()
    client = fiscus.wrap(async_anthropic_client, agent="w", governor=governor, breakers=breakers)
    raw = await client.messages.with_raw_response.create(model="claude-haiku-4-5", max_tokens=60, messages=MESSAGES)
    message = await raw.parse()
    assert type(message) is Message
    assert ledger.events[0].usage.output_tokens == message.usage.output_tokens


async def test_raw_refusal_is_a_partial_raw_response_and_recorded(async_openai_client, anthropic_client, governed):
    governor, ledger, _, breakers = governed(TINY)
    client = fiscus.wrap(async_openai_client, agent="a", governor=governor, breakers=breakers)
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raw.headers["x-fiscus-partial"] == "budget_exhausted" and raw.parse().choices[0].finish_reason == "stop"
    governed_anthropic = fiscus.wrap(anthropic_client, agent="a", governor=governor, breakers=breakers)
    raw = governed_anthropic.messages.with_raw_response.create(
        model="claude-haiku-4-5", max_tokens=9, messages=MESSAGES
    )
    assert raw.parse().stop_reason == "end_turn"
    assert [e.status for e in ledger.events] == [CallStatus.PARTIAL, CallStatus.PARTIAL]
    assert ledger.spent() == 0


async def test_raw_stream_is_refused_plainly(async_openai_client, governed):
    governor, _, _, breakers = governed()
    client = fiscus.wrap(async_openai_client, governor=governor, breakers=breakers)
    with pytest.raises(fiscus.FiscusError, match="stream=True"):
        await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)


def test_session_ceiling_stop_is_one_ledger_event(openai_client, governed):
    governor, ledger, _, breakers = governed()
    client = fiscus.wrap(openai_client, agent="r", governor=governor, breakers=breakers)
    with fiscus.session(ceiling_usd="0.0000001") as s:
        reply = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert "ceiling" in reply.choices[0].message.content and s.outcome == "ceiling"
    [event] = ledger.events
    assert event.status is CallStatus.PARTIAL and event.total_usd == 0 and event.usage.total_tokens == 0
    assert event.attribution.session == s.id and event.requested_model == "gpt-4o"


def test_cache_writes_only_for_anthropic_cache_control(openai_client, anthropic_client, governed):
    governor, _, _, breakers = governed()
    seen: list[CallRequest] = []
    admit_steps = governor.admit_steps  # every door admits through the governor's steps
    governor.admit_steps = lambda request: seen.append(request) or admit_steps(request)  # type: ignore[method-assign]
    claude = fiscus.wrap(anthropic_client, governor=governor, breakers=breakers)
    gpt = fiscus.wrap(openai_client, governor=governor, breakers=breakers)
    claude.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=MESSAGES)
    cached = [{"type": "text", "text": "A long system prompt.", "cache_control": {"type": "ephemeral"}}]
    claude.messages.create(model="claude-haiku-4-5", max_tokens=20, system=cached, messages=MESSAGES)
    gpt.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert [r.cache_writes for r in seen] == [False, True, False]
