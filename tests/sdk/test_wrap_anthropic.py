"""The Anthropic SDK, wrapped: messages.create (whole and streamed) and the messages.stream helper."""

from __future__ import annotations

import anthropic
from anthropic.types import Message, RawMessageStreamEvent  # noqa: F401 - the SDK's own types

import fiscus

MESSAGES = [{"role": "user", "content": "Name three colours of the sea."}]
MODEL = "claude-haiku-4-5"


def test_create_returns_message_and_settles(anthropic_client, governed):
    governor, ledger, _, breakers = governed()
    client = fiscus.wrap(anthropic_client, agent="writer", governor=governor, breakers=breakers)
    reply = client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    assert type(reply) is Message
    [event] = ledger.events
    assert event.provider == "anthropic" and event.attribution.agent == "writer"
    assert event.usage.output_tokens == reply.usage.output_tokens
    assert event.usage.input_tokens == reply.usage.input_tokens
    assert event.total_usd > 0


def test_create_stream_true(anthropic_client, governed):
    governor, ledger, _, breakers = governed()
    client = fiscus.wrap(anthropic_client, governor=governor, breakers=breakers)
    stream = client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, stream=True)
    assert isinstance(stream, anthropic.Stream)
    kinds = [e.type for e in stream]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    [event] = ledger.events
    assert event.streamed and not event.usage.estimated and event.usage.output_tokens > 0


def test_messages_stream_helper(anthropic_client, governed):
    governor, ledger, _, breakers = governed()
    client = fiscus.wrap(anthropic_client, governor=governor, breakers=breakers)
    with client.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and isinstance(final, Message)
    [event] = ledger.events
    assert event.usage.output_tokens == final.usage.output_tokens


async def test_async_create_and_stream_helper(async_anthropic_client, governed):
    governor, ledger, _, breakers = governed()
    client = fiscus.wrap(async_anthropic_client, agent="a", governor=governor, breakers=breakers)
    reply = await client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    assert type(reply) is Message
    async with client.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as stream:
        final = await stream.get_final_message()
    assert isinstance(final, Message)
    stream = await client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, stream=True)
    assert isinstance(stream, anthropic.AsyncStream)
    assert [e.type async for e in stream][-1] == "message_stop"
    assert len(ledger.events) == 3 and all(not e.usage.estimated for e in ledger.events)
