"""Translated whole answers and their usage: what fiscus reads from the translated answer is what the provider
reported; tool calls, refusals and stop reasons carried both ways."""

from __future__ import annotations

from typing import Any

import anthropic.types as at
import orjson
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from fiscus.usage.detect import read_usage
from fiscus.usage.model import Usage
from fiscus.usage.sse import parse_sse
from fiscus.usage.wire import WireFormat
from tests.providers.translate_support import (
    DATA,
    EVENT,
    chat_client,
    dumps,
    feed_bytewise,
    feed_whole,
    json_events,
    messages_client,
    no_cache_writes,
)

# Usage: what fiscus reads from the translated answer is what the provider reported.


def test_whole_openai_answer_reads_back_the_same_usage_in_messages_format() -> None:
    body = (DATA / "openai_chat_body.json").read_bytes()
    out = messages_client({"model": "m", "max_tokens": 10, "messages": []}).response(body)
    provider = read_usage(body, WireFormat.OPENAI_CHAT)
    client = read_usage(out, WireFormat.ANTHROPIC)
    assert client.usage == provider.usage
    assert client.usage.reasoning_tokens == 704 and client.usage.cache_read_tokens == 1920
    assert client.model == provider.model == "o4-mini-2025-04-16"
    message = at.Message.model_validate(orjson.loads(out))
    assert message.content[0].type == "text" and message.stop_reason == "end_turn"


def test_whole_anthropic_answer_reads_back_the_same_usage_in_chat_format() -> None:
    body = orjson.loads((DATA / "anthropic_body.json").read_bytes())
    body["usage"].update(cache_creation_input_tokens=0, cache_creation=None)
    raw = dumps(body)
    out = chat_client({"model": "m", "messages": []}).response(raw)
    provider = read_usage(raw, WireFormat.ANTHROPIC)
    client = read_usage(out, WireFormat.OPENAI_CHAT)
    assert client.usage == provider.usage
    assert client.usage.reasoning_tokens == 301 and client.usage.cache_read_tokens == 14210
    completion = ChatCompletion.model_validate(orjson.loads(out))
    assert completion.model == "claude-sonnet-4-5-20250929"
    assert completion.choices[0].message.content == body["content"][1]["text"]  # the thinking block is not shown
    assert completion.choices[0].finish_reason == "stop"


def test_cache_writes_chat_cannot_express_are_folded_into_prompt_tokens_not_lost() -> None:
    body = (DATA / "anthropic_body.json").read_bytes()
    out = chat_client({"model": "m", "messages": []}).response(body)
    provider = read_usage(body, WireFormat.ANTHROPIC).usage
    client = read_usage(out, WireFormat.OPENAI_CHAT).usage
    assert provider.cache_write_tokens == 2620
    assert client.total_input_tokens == provider.total_input_tokens
    assert client.input_tokens == provider.input_tokens + provider.cache_write_tokens
    assert (client.cache_read_tokens, client.output_tokens, client.reasoning_tokens) == (14210, 512, 301)
    assert orjson.loads(out)["usage"]["cache_creation_input_tokens"] == 2620


@pytest.mark.parametrize("split", [feed_whole, feed_bytewise])
def test_anthropic_stream_reads_back_the_same_usage_in_chat_format(split: Any) -> None:
    data = no_cache_writes((DATA / "anthropic_stream.sse").read_bytes())
    body = {"model": "m", "messages": [], "stream": True, "stream_options": {"include_usage": True}}
    out = split(chat_client(body).stream(), data)
    assert read_usage(out, WireFormat.OPENAI_CHAT).usage == read_usage(data, WireFormat.ANTHROPIC).usage
    chunks = [ChatCompletionChunk.model_validate(chunk) for chunk in json_events(out)]
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You have $412.50 left of the $2,000 monthly budget — about 21%."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert out.endswith(b"data: [DONE]\n\n")


def test_anthropic_stream_cache_writes_are_folded_not_lost() -> None:
    data = (DATA / "anthropic_stream.sse").read_bytes()
    body = {"model": "m", "messages": [], "stream": True, "stream_options": {"include_usage": True}}
    out = feed_whole(chat_client(body).stream(), data)
    provider = read_usage(data, WireFormat.ANTHROPIC).usage
    client = read_usage(out, WireFormat.OPENAI_CHAT).usage
    assert provider.cache_write_tokens == 1536
    assert client == Usage(input_tokens=42 + 1536, output_tokens=187)


def test_no_usage_chunk_unless_the_request_asked_for_it() -> None:
    data = (DATA / "anthropic_stream.sse").read_bytes()
    out = feed_whole(chat_client({"model": "m", "messages": [], "stream": True}).stream(), data)
    assert all(chunk["choices"] for chunk in json_events(out))
    assert out.endswith(b"data: [DONE]\n\n")


@pytest.mark.parametrize("split", [feed_whole, feed_bytewise])
def test_openai_stream_reads_back_the_same_usage_in_messages_format(split: Any) -> None:
    data = (DATA / "openai_chat_stream.sse").read_bytes()
    out = split(messages_client({"model": "m", "max_tokens": 10, "messages": [], "stream": True}).stream(), data)
    assert read_usage(out, WireFormat.ANTHROPIC).usage == read_usage(data, WireFormat.OPENAI_CHAT).usage
    events = [EVENT.validate_python(event) for event in json_events(out)]
    kinds = [event.type for event in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta")
    assert text == "The capital of France is Paris."
    # The SSE `event:` name matches each event's type, as Anthropic's SDK dispatches on it.
    assert [event.event for event in parse_sse(out)] == kinds


# Whole answers with tool calls, refusals and stop reasons.


def test_anthropic_tool_use_answer_to_chat_tool_calls() -> None:
    body = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_budget", "input": {"team": "ads"}}],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 20},
    }
    completion = ChatCompletion.model_validate_json(chat_client({"model": "m", "messages": []}).response(dumps(body)))
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]
    assert (call.id, call.function.name, orjson.loads(call.function.arguments)) == (
        "toolu_1",
        "get_budget",
        {"team": "ads"},
    )


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_stop_reasons_map_both_ways(stop: str, finish: str) -> None:
    anthropic = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "c",
        "stop_sequence": None,
        "content": [{"type": "text", "text": "x"}],
        "stop_reason": stop,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    chat = orjson.loads(chat_client({"model": "m", "messages": []}).response(dumps(anthropic)))
    assert chat["choices"][0]["finish_reason"] == finish
    back = orjson.loads(messages_client({"model": "m", "max_tokens": 1, "messages": []}).response(dumps(chat)))
    assert back["stop_reason"] == ("end_turn" if stop == "stop_sequence" else stop)


def test_openai_tool_calls_and_refusal_answers_to_messages() -> None:
    body = orjson.loads((DATA / "openai_chat_body.json").read_bytes())
    body["choices"][0]["message"] = {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}},
            {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": '{"a": '}},
        ],
    }
    body["choices"][0]["finish_reason"] = "tool_calls"
    message = at.Message.model_validate_json(
        messages_client({"model": "m", "max_tokens": 1, "messages": []}).response(dumps(body))
    )
    assert message.stop_reason == "tool_use"
    assert [(b.id, b.name, b.input) for b in message.content] == [
        ("call_1", "f", {"a": 1}),
        ("call_2", "g", {"_raw_arguments": '{"a": '}),  # malformed JSON from the model is kept, not dropped
    ]
    body["choices"][0]["message"] = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
    body["choices"][0]["finish_reason"] = "stop"
    message = at.Message.model_validate_json(
        messages_client({"model": "m", "max_tokens": 1, "messages": []}).response(dumps(body))
    )
    assert message.stop_reason == "refusal" and message.content[0].text == "I can't help with that."
