"""The OpenAI SDK, wrapped: same methods, same return types, usage settled into the ledger."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response

import fiscus
from fiscus.events.cost_event import CallStatus

MESSAGES = [{"role": "user", "content": "Name three colours of the sea."}]


def test_chat_create_returns_the_sdks_object_and_settles(openai_client, governed):
    governor, ledger, _, breakers = governed()
    client = fiscus.wrap(openai_client, agent="researcher", team="growth", governor=governor, breakers=breakers)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=50)
    assert type(reply) is ChatCompletion
    [event] = ledger.events
    assert event.status is CallStatus.OK
    assert event.attribution.agent == "researcher" and event.attribution.team == "growth"
    assert event.usage.input_tokens == reply.usage.prompt_tokens
    assert event.usage.output_tokens == reply.usage.completion_tokens
    assert event.total_usd > 0 and event.id
    assert client.models is openai_client.models  # everything else is the client's own


def test_chat_stream_hides_the_usage_chunk_it_asked_for(openai_client, governed):
    governor, ledger, _, breakers = governed()
    client = fiscus.wrap(openai_client, agent="a", governor=governor, breakers=breakers)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert isinstance(stream, openai.Stream)
    chunks = list(stream)
    assert all(type(c) is ChatCompletionChunk for c in chunks)
    assert all(c.choices for c in chunks)  # the usage-only chunk was hidden
    [event] = ledger.events
    assert event.streamed and not event.usage.estimated and event.usage.output_tokens > 0


def test_chat_stream_keeps_the_usage_chunk_when_the_caller_asked(openai_client, governed):
    governor, ledger, _, breakers = governed()
    client = fiscus.wrap(openai_client, governor=governor, breakers=breakers)
    with client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ) as stream:
        chunks = list(stream)
    assert chunks[-1].usage is not None and not chunks[-1].choices
    assert ledger.events[0].usage.output_tokens == chunks[-1].usage.completion_tokens


def test_abandoned_stream_is_settled_with_estimated_usage(openai_client, governed):
    governor, ledger, _, breakers = governed()
    client = fiscus.wrap(openai_client, governor=governor, breakers=breakers)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    next(iter(stream))
    stream.close()
    [event] = ledger.events
    assert event.usage.estimated and event.usage.input_tokens > 0
    assert event.status is CallStatus.OK


def test_stream_never_read_is_settled_on_close(openai_client, governed):
    governor, ledger, _, breakers = governed()
    client = fiscus.wrap(openai_client, governor=governor, breakers=breakers)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True).close()
    assert len(ledger.events) == 1 and ledger.events[0].usage.estimated


def test_responses_create_and_stream(openai_client, governed):
    governor, ledger, _, breakers = governed()
    client = fiscus.wrap(openai_client, agent="r", governor=governor, breakers=breakers)
    reply = client.responses.create(model="gpt-4o-mini", input="Say hi", max_output_tokens=40)
    assert type(reply) is Response
    events = list(client.responses.create(model="gpt-4o-mini", input="Say hi", stream=True))
    assert events[-1].type == "response.completed"
    first, second = ledger.events
    assert first.usage.output_tokens == reply.usage.output_tokens
    assert second.streamed and not second.usage.estimated


def test_raw_response_is_returned_and_settled(openai_client, governed):
    governor, ledger, _, breakers = governed()
    client = fiscus.wrap(openai_client, governor=governor, breakers=breakers)
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert type(raw.parse()) is ChatCompletion and raw.http_request is not None
    assert ledger.events[0].usage.output_tokens == raw.parse().usage.completion_tokens


def test_provider_error_is_settled_as_error_and_reraised_unchanged(openai_client, governed):
    governor, ledger, _, breakers = governed()
    client = fiscus.wrap(openai_client, governor=governor, breakers=breakers)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-emulator-error": "500"}
        )
    [event] = ledger.events
    assert event.status is CallStatus.ERROR and event.total_usd == 0


async def test_async_chat_and_stream(async_openai_client, governed):
    governor, ledger, _, breakers = governed()
    client = fiscus.wrap(async_openai_client, agent="a", governor=governor, breakers=breakers)
    reply = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert type(reply) is ChatCompletion
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert isinstance(stream, openai.AsyncStream)
    chunks = [c async for c in stream]
    assert chunks and all(c.choices for c in chunks)
    assert [e.streamed for e in ledger.events] == [False, True]
    assert all(not e.usage.estimated for e in ledger.events)
    assert ledger.spent() == sum((e.total_usd for e in ledger.events), Decimal(0))
