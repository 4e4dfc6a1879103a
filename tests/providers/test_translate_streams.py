"""Translated streams: usage, tool calls split at every byte, the SDKs' own accumulators, ends and errors."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai.types.chat import ChatCompletionChunk

from fiscus.usage.detect import read_usage
from fiscus.usage.model import Usage
from fiscus.usage.sse import parse_sse
from fiscus.usage.wire import WireFormat
from tests.providers.translate_support import (
    ANTHROPIC_TOOL_STREAM,
    DATA,
    EVENT,
    OPENAI_TOOL_STREAM,
    chat_client,
    feed_bytewise,
    feed_whole,
    json_events,
    messages_client,
)

# Tool-call streams, split at every byte.


@pytest.mark.parametrize("split", [feed_whole, feed_bytewise])
def test_anthropic_tool_stream_to_chat_chunks(split: Any) -> None:
    body = {"model": "m", "messages": [], "stream": True, "stream_options": {"include_usage": True}}
    out = split(chat_client(body).stream(), ANTHROPIC_TOOL_STREAM)
    chunks = [ChatCompletionChunk.model_validate(chunk) for chunk in json_events(out)]
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or ():
                entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                entry["id"] += call.id or ""
                entry["name"] += (call.function.name or "") if call.function else ""
                entry["arguments"] += (call.function.arguments or "") if call.function else ""
    assert calls == {
        0: {"id": "toolu_01A", "name": "get_budget", "arguments": '{"team": "search"}'},
        1: {"id": "toolu_01B", "name": "get_budget", "arguments": '{"team": "ads"}'},
    }
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert (
        read_usage(out, WireFormat.OPENAI_CHAT).usage == read_usage(ANTHROPIC_TOOL_STREAM, WireFormat.ANTHROPIC).usage
    )


@pytest.mark.parametrize("split", [feed_whole, feed_bytewise])
def test_openai_tool_stream_to_messages_events(split: Any) -> None:
    body = {"model": "m", "max_tokens": 10, "messages": [], "stream": True}
    out = split(messages_client(body).stream(), OPENAI_TOOL_STREAM)
    events = [EVENT.validate_python(event) for event in json_events(out)]
    blocks: dict[int, dict[str, Any]] = {}
    open_blocks: set[int] = set()
    for event in events:
        if event.type == "content_block_start":
            assert not open_blocks  # one block at a time, as Anthropic streams them
            open_blocks.add(event.index)
            blocks[event.index] = {"id": event.content_block.id, "name": event.content_block.name, "json": ""}
        elif event.type == "content_block_delta":
            assert event.index in open_blocks
            blocks[event.index]["json"] += event.delta.partial_json
        elif event.type == "content_block_stop":
            open_blocks.remove(event.index)
    assert {i: (b["id"], b["name"], orjson.loads(b["json"])) for i, b in blocks.items()} == {
        0: ("call_A", "get_budget", {"team": "search"}),
        1: ("call_B", "get_budget", {"team": "ads"}),
    }
    assert events[-2].type == "message_delta" and events[-2].delta.stop_reason == "tool_use"
    usage = read_usage(out, WireFormat.ANTHROPIC).usage
    assert usage == read_usage(OPENAI_TOOL_STREAM, WireFormat.OPENAI_CHAT).usage
    assert usage == Usage(input_tokens=132, cache_read_tokens=768, output_tokens=40, reasoning_tokens=12)


def test_bytewise_split_gives_the_same_bytes_as_whole_feeding() -> None:
    for client, data in (
        (
            {"model": "m", "messages": [], "stream": True, "stream_options": {"include_usage": True}},
            ANTHROPIC_TOOL_STREAM,
        ),
        ({"model": "m", "messages": [], "stream": True}, (DATA / "anthropic_stream.sse").read_bytes()),
    ):
        assert feed_bytewise(chat_client(client).stream(), data) == feed_whole(chat_client(client).stream(), data)
    anthropic_client = {"model": "m", "max_tokens": 10, "messages": [], "stream": True}
    for data in (OPENAI_TOOL_STREAM, (DATA / "openai_chat_stream.sse").read_bytes()):
        whole = feed_whole(messages_client(anthropic_client).stream(), data)
        assert feed_bytewise(messages_client(anthropic_client).stream(), data) == whole


def test_crlf_framing_is_read_too() -> None:
    data = (DATA / "anthropic_stream.sse").read_bytes()
    body = {"model": "m", "messages": [], "stream": True}
    assert feed_bytewise(chat_client(body).stream(), data.replace(b"\n", b"\r\n")) == feed_whole(
        chat_client(body).stream(), data
    )


# The SDKs' own stream accumulators build the whole answer from the translated streams.


def test_openai_sdk_accumulates_the_translated_stream() -> None:
    from openai.lib.streaming.chat import ChatCompletionStreamState

    body = {"model": "m", "messages": [], "stream": True, "stream_options": {"include_usage": True}}
    out = feed_bytewise(chat_client(body).stream(), ANTHROPIC_TOOL_STREAM)
    state = ChatCompletionStreamState()
    for chunk in json_events(out):
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    final = state.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Checking both." and final.choices[0].finish_reason == "tool_calls"
    assert [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or ()] == [
        ("toolu_01A", "get_budget", '{"team": "search"}'),
        ("toolu_01B", "get_budget", '{"team": "ads"}'),
    ]
    assert final.usage is not None and final.usage.prompt_tokens == 2560 and final.usage.completion_tokens == 61


def test_anthropic_sdk_accumulates_the_translated_stream() -> None:
    from anthropic.lib.streaming._messages import accumulate_event

    out = feed_bytewise(
        messages_client({"model": "m", "max_tokens": 10, "messages": [], "stream": True}).stream(), OPENAI_TOOL_STREAM
    )
    snapshot: Any = None
    buffers: dict[int, bytes] = {}
    for event in json_events(out):
        snapshot = accumulate_event(event=EVENT.validate_python(event), current_snapshot=snapshot, json_bufs=buffers)
    assert [(b.id, b.name, b.input) for b in snapshot.content] == [
        ("call_A", "get_budget", {"team": "search"}),
        ("call_B", "get_budget", {"team": "ads"}),
    ]
    assert snapshot.stop_reason == "tool_use" and snapshot.model == "gpt-4o-2024-08-06"
    assert (snapshot.usage.input_tokens, snapshot.usage.cache_read_input_tokens, snapshot.usage.output_tokens) == (
        132,
        768,
        40,
    )


# Stream ends and errors.


def test_mid_stream_anthropic_error_becomes_a_chat_error_and_ends_the_stream() -> None:
    data = (DATA / "anthropic_stream.sse").read_bytes()
    cut = data.index(b"event: content_block_stop")
    error = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    out = feed_whole(chat_client({"model": "m", "messages": [], "stream": True}).stream(), data[:cut] + error)
    last = list(json_events(out))[-1]
    assert last == {
        "error": {"message": "Overloaded", "type": "server_error", "param": None, "code": "overloaded_error"}
    }
    assert b"[DONE]" not in out


def test_mid_stream_openai_error_becomes_an_anthropic_error_event() -> None:
    data = (DATA / "openai_chat_stream.sse").read_bytes()
    cut = data.index(b"data:", 300)
    error = b'data: {"error":{"message":"The server had an error","type":"server_error","code":null}}\n\n'
    out = feed_whole(
        messages_client({"model": "m", "max_tokens": 5, "messages": [], "stream": True}).stream(), data[:cut] + error
    )
    events = list(parse_sse(out))
    assert events[-1].event == "error"
    assert orjson.loads(events[-1].data) == {
        "type": "error",
        "error": {"type": "api_error", "message": "The server had an error"},
    }
    assert b"message_stop" not in out


def test_cut_off_streams_do_not_claim_an_end() -> None:
    data = (DATA / "anthropic_stream.sse").read_bytes()
    cut = data.index(b"event: message_delta")
    out = feed_whole(chat_client({"model": "m", "messages": [], "stream": True}).stream(), data[:cut])
    assert b"[DONE]" not in out and b'finish_reason":"stop' not in out
    data = (DATA / "openai_chat_stream.sse").read_bytes()
    cut = data.index(b'"finish_reason":"stop"')
    out = feed_whole(
        messages_client({"model": "m", "max_tokens": 5, "messages": [], "stream": True}).stream(), data[:cut]
    )
    assert b"message_delta" not in out and b"message_stop" not in out
    assert read_usage(out, WireFormat.ANTHROPIC).usage.estimated  # fiscus estimates, it does not read a zero


def test_message_stop_missing_still_ends_the_chat_stream_on_close() -> None:
    data = (DATA / "anthropic_stream.sse").read_bytes()
    data = data[: data.index(b"event: message_stop")]
    body = {"model": "m", "messages": [], "stream": True, "stream_options": {"include_usage": True}}
    out = feed_whole(chat_client(body).stream(), data)
    assert out.endswith(b"data: [DONE]\n\n")
    assert read_usage(out, WireFormat.OPENAI_CHAT).usage.output_tokens == 187


def test_an_openai_stream_without_done_ends_on_close() -> None:
    data = (DATA / "openai_chat_stream.sse").read_bytes().replace(b"data: [DONE]\n\n", b"")
    out = feed_whole(messages_client({"model": "m", "max_tokens": 5, "messages": [], "stream": True}).stream(), data)
    assert out.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
