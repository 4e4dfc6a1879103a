"""Translation between Chat Completions and Anthropic Messages: requests, whole answers, streams and errors."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic.types as at
import orjson
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import TypeAdapter

from fiscus.providers.messages import ProviderError
from fiscus.providers.translate import Untranslatable, translation
from fiscus.usage.detect import read_usage
from fiscus.usage.model import Usage
from fiscus.usage.sse import parse_sse
from fiscus.usage.wire import WireFormat

DATA = Path(__file__).parents[1] / "usage" / "data"
EVENT = TypeAdapter(at.RawMessageStreamEvent)
IMAGE = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def chat_client(body: dict[str, Any]) -> Any:
    return translation("chat.completions", "messages", dumps(body))


def messages_client(body: dict[str, Any]) -> Any:
    return translation("messages", "chat.completions", dumps(body))


def to_anthropic(body: dict[str, Any], model: str = "claude-sonnet-4-5") -> dict[str, Any]:
    raw = dumps(body)
    return orjson.loads(translation("chat.completions", "messages", raw).request(raw, model))


def to_openai(body: dict[str, Any], model: str = "gpt-4o") -> dict[str, Any]:
    raw = dumps(body)
    return orjson.loads(translation("messages", "chat.completions", raw).request(raw, model))


def feed_bytewise(stream: Any, data: bytes) -> bytes:
    out = b"".join(stream.feed(data[i : i + 1]) for i in range(len(data)))
    return out + stream.close()


def feed_whole(stream: Any, data: bytes) -> bytes:
    return stream.feed(data) + stream.close()


def sse(events: list[dict[str, Any]], named: bool) -> bytes:
    if named:
        return b"".join(b"event: " + e["type"].encode() + b"\ndata: " + dumps(e) + b"\n\n" for e in events)
    return b"".join(b"data: " + dumps(e) + b"\n\n" for e in events) + b"data: [DONE]\n\n"


def json_events(stream: bytes) -> Iterator[dict[str, Any]]:
    for event in parse_sse(stream):
        if not event.is_done:
            yield orjson.loads(event.data)


# Realistic tool-call streams of each provider (the usage fixtures hold text-only ones).

ANTHROPIC_TOOL_STREAM = sse(
    [
        {
            "type": "message_start",
            "message": {
                "id": "msg_01T",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 512,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 2048,
                    "output_tokens": 1,
                },
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Checking both."}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_01A", "name": "get_budget", "input": {}},
        },
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"team": '}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '"search"}'}},
        {"type": "content_block_stop", "index": 1},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "tool_use", "id": "toolu_01B", "name": "get_budget", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": '{"team": "ads"}'},
        },
        {"type": "content_block_stop", "index": 2},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 61},
        },
        {"type": "message_stop"},
    ],
    named=True,
)

_CHUNK = {"id": "chatcmpl-T1", "object": "chat.completion.chunk", "created": 1750239170, "model": "gpt-4o-2024-08-06"}
OPENAI_TOOL_STREAM = sse(
    [
        _CHUNK
        | {
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": None}, "finish_reason": None}],
            "usage": None,
        },
        _CHUNK
        | {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_A",
                                "type": "function",
                                "function": {"name": "get_budget", "arguments": ""},
                            }
                        ]
                    },
                    "finish_reason": None,
                }
            ],
            "usage": None,
        },
        _CHUNK
        | {
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"team"'}}]},
                    "finish_reason": None,
                }
            ],
            "usage": None,
        },
        _CHUNK
        | {
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ': "search"}'}}]},
                    "finish_reason": None,
                }
            ],
            "usage": None,
        },
        _CHUNK
        | {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 1,
                                "id": "call_B",
                                "type": "function",
                                "function": {"name": "get_budget", "arguments": '{"team": "ads"}'},
                            }
                        ]
                    },
                    "finish_reason": None,
                }
            ],
            "usage": None,
        },
        _CHUNK | {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}], "usage": None},
        _CHUNK
        | {
            "choices": [],
            "usage": {
                "prompt_tokens": 900,
                "completion_tokens": 40,
                "total_tokens": 940,
                "prompt_tokens_details": {"cached_tokens": 768},
                "completion_tokens_details": {"reasoning_tokens": 12},
            },
        },
    ],
    named=False,
)


def no_cache_writes(stream: bytes) -> bytes:
    """The Anthropic fixture stream as a request translated from Chat Completions gets it: no cache writes."""
    return stream.replace(b'"cache_creation_input_tokens":1536', b'"cache_creation_input_tokens":0').replace(
        b'"ephemeral_5m_input_tokens":1536', b'"ephemeral_5m_input_tokens":0'
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


def test_a_request_from_chat_carries_no_cache_control_so_anthropic_writes_no_cache() -> None:
    out = to_anthropic(ROUND_TRIP_CHAT)

    def keys(value: Any) -> Iterator[str]:
        if isinstance(value, dict):
            for key, item in value.items():
                yield key
                yield from keys(item)
        elif isinstance(value, list):
            for item in value:
                yield from keys(item)

    assert "cache_control" not in set(keys(out))


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


# Requests.

TOOLS_CHAT = [
    {
        "type": "function",
        "function": {
            "name": "get_budget",
            "description": "Remaining budget of a team.",
            "parameters": {"type": "object", "properties": {"team": {"type": "string"}}, "required": ["team"]},
        },
    }
]
ROUND_TRIP_CHAT: dict[str, Any] = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "You answer budget questions."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "How much is left for search and ads? See the chart."},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{IMAGE}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/chart.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Checking both.",
            "tool_calls": [
                {
                    "id": "call_A",
                    "type": "function",
                    "function": {"name": "get_budget", "arguments": '{"team":"search"}'},
                },
                {"id": "call_B", "type": "function", "function": {"name": "get_budget", "arguments": '{"team":"ads"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_A", "content": "$412.50"},
        {"role": "tool", "tool_call_id": "call_B", "content": "$80.00"},
        {"role": "user", "content": "And in total?"},
    ],
    "tools": TOOLS_CHAT,
    "tool_choice": "required",
    "max_completion_tokens": 300,
    "temperature": 0.2,
    "top_p": 0.9,
    "stop": ["END", "STOP"],
    "user": "tenant-7",
    "stream": True,
    "stream_options": {"include_usage": True},
}


def test_chat_request_to_messages() -> None:
    out = to_anthropic(ROUND_TRIP_CHAT)
    assert out["model"] == "claude-sonnet-4-5" and out["system"] == "You answer budget questions."
    assert out["max_tokens"] == 300 and out["stop_sequences"] == ["END", "STOP"]
    assert out["metadata"] == {"user_id": "tenant-7"} and out["tool_choice"] == {"type": "any"}
    assert out["tools"] == [
        {
            "name": "get_budget",
            "description": "Remaining budget of a team.",
            "input_schema": TOOLS_CHAT[0]["function"]["parameters"],
        }
    ]
    assert [m["role"] for m in out["messages"]] == [
        "user",
        "assistant",
        "user",
    ]  # tool results and the next turn merged
    user, assistant, results = out["messages"]
    assert user["content"][1]["source"] == {"type": "base64", "media_type": "image/png", "data": IMAGE}
    assert user["content"][2]["source"] == {"type": "url", "url": "https://example.com/chart.png"}
    assert assistant["content"][1] == {
        "type": "tool_use",
        "id": "call_A",
        "name": "get_budget",
        "input": {"team": "search"},
    }
    assert results["content"] == [
        {"type": "tool_result", "tool_use_id": "call_A", "content": "$412.50"},
        {"type": "tool_result", "tool_use_id": "call_B", "content": "$80.00"},
        {"type": "text", "text": "And in total?"},
    ]
    assert "stream_options" not in out and out["stream"] is True


def test_chat_request_round_trip_keeps_its_meaning() -> None:
    back = to_openai(to_anthropic(ROUND_TRIP_CHAT), "gpt-4o")
    assert back["messages"][0] == {"role": "system", "content": "You answer budget questions."}
    assert back["messages"][1]["content"] == ROUND_TRIP_CHAT["messages"][1]["content"]
    assistant = back["messages"][2]
    assert assistant["content"] == "Checking both."
    assert [(c["id"], orjson.loads(c["function"]["arguments"])) for c in assistant["tool_calls"]] == [
        ("call_A", {"team": "search"}),
        ("call_B", {"team": "ads"}),
    ]
    assert back["messages"][3:] == ROUND_TRIP_CHAT["messages"][3:]
    assert back["tools"] == TOOLS_CHAT and back["tool_choice"] == "required"
    for key in ("temperature", "top_p", "stop", "user", "stream", "stream_options"):
        assert back[key] == ROUND_TRIP_CHAT[key], key
    assert back["max_completion_tokens"] == 300


ROUND_TRIP_MESSAGES: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "system": [{"type": "text", "text": "You answer budget questions.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": "How much is left for search?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Look it up.", "signature": "sig"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_A", "name": "get_budget", "input": {"team": "search"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_A", "content": [{"type": "text", "text": "$412.50"}]},
                {"type": "text", "text": "Thanks. And this PDF?"},
                {
                    "type": "document",
                    "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
                    "title": "q3.pdf",
                },
            ],
        },
    ],
    "tools": [
        {
            "name": "get_budget",
            "description": "Remaining budget of a team.",
            "input_schema": TOOLS_CHAT[0]["function"]["parameters"],
            "cache_control": {"type": "ephemeral"},
        }
    ],
    "tool_choice": {"type": "tool", "name": "get_budget", "disable_parallel_tool_use": True},
    "max_tokens": 1024,
    "temperature": 0.5,
    "stop_sequences": ["END"],
    "metadata": {"user_id": "tenant-7"},
    "thinking": {"type": "enabled", "budget_tokens": 512},
    "stream": True,
}


def test_messages_request_to_chat() -> None:
    out = to_openai(ROUND_TRIP_MESSAGES)
    assert out["messages"][0] == {
        "role": "system",
        "content": [{"type": "text", "text": "You answer budget questions."}],
    }
    assert out["messages"][2] == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {"id": "toolu_A", "type": "function", "function": {"name": "get_budget", "arguments": '{"team":"search"}'}}
        ],
    }
    assert out["messages"][3] == {
        "role": "tool",
        "tool_call_id": "toolu_A",
        "content": [{"type": "text", "text": "$412.50"}],
    }
    assert out["messages"][4]["content"][1] == {
        "type": "file",
        "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "q3.pdf"},
    }
    assert out["tool_choice"] == {"type": "function", "function": {"name": "get_budget"}}
    assert out["parallel_tool_calls"] is False and out["max_completion_tokens"] == 1024
    assert out["stream_options"] == {"include_usage": True} and out["user"] == "tenant-7" and out["stop"] == ["END"]
    assert "thinking" not in out and b"cache_control" not in dumps(out)


def test_messages_request_round_trip_keeps_its_meaning() -> None:
    back = to_anthropic(to_openai(ROUND_TRIP_MESSAGES), "claude-sonnet-4-5")
    original = copy.deepcopy(ROUND_TRIP_MESSAGES)
    # What is dropped by design: thinking (request and past blocks) and cache_control.
    del original["thinking"]
    del original["system"][0]["cache_control"], original["tools"][0]["cache_control"]
    del original["messages"][1]["content"][0]
    assert back["system"] == original["system"][0]["text"]
    assert back["messages"][0]["content"] == [{"type": "text", "text": original["messages"][0]["content"]}]
    assert back["messages"][1:] == original["messages"][1:]
    for key in ("tools", "tool_choice", "max_tokens", "temperature", "stop_sequences", "metadata", "stream"):
        assert back[key] == original[key], key


def test_a_tool_error_is_marked_in_the_text() -> None:
    result = {"type": "tool_result", "tool_use_id": "t", "content": "no such team", "is_error": True}
    out = to_openai(_MESSAGES | {"messages": [{"role": "user", "content": [result]}]})
    assert out["messages"] == [{"role": "tool", "tool_call_id": "t", "content": "Error: no such team"}]


def test_documents_both_ways() -> None:
    text = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Q3: $9,000"}}
    out = to_openai(_MESSAGES | {"messages": [{"role": "user", "content": [text]}]})
    assert out["messages"] == [{"role": "user", "content": "Q3: $9,000"}]
    file = {"type": "file", "file": {"filename": "q3.txt", "file_data": "data:text/plain;base64,UTM6ICQ5LDAwMA=="}}
    out = to_anthropic(_CHAT | {"messages": [{"role": "user", "content": [file]}]})
    assert out["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "Q3: $9,000"},
            "title": "q3.txt",
        }
    ]


def test_request_defaults_and_clamps() -> None:
    out = to_anthropic(
        {
            "model": "x",
            "messages": [{"role": "developer", "content": "d"}, {"role": "user", "content": "u"}],
            "temperature": 1.7,
            "stop": "END",
            "parallel_tool_calls": False,
            "tools": TOOLS_CHAT,
            "seed": 3,
            "n": 1,
            "logprobs": False,
            "response_format": {"type": "text"},
        }
    )
    assert out["max_tokens"] == 4096 and out["temperature"] == 1 and out["stop_sequences"] == ["END"]
    assert out["system"] == "d" and out["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert "seed" not in out and "n" not in out
    assert to_anthropic({"model": "x", "messages": [], "max_tokens": 50})["max_tokens"] == 50
    none = to_anthropic({"model": "x", "messages": [], "tools": TOOLS_CHAT, "tool_choice": "none"})
    assert none["tool_choice"] == {"type": "none"}
    named = to_anthropic(
        {
            "model": "x",
            "messages": [],
            "tools": TOOLS_CHAT,
            "tool_choice": {"type": "function", "function": {"name": "get_budget"}},
        }
    )
    assert named["tool_choice"] == {"type": "tool", "name": "get_budget"}
    assert (
        to_openai(
            {
                "model": "x",
                "max_tokens": 5,
                "messages": [],
                "tools": ROUND_TRIP_MESSAGES["tools"],
                "tool_choice": {"type": "any"},
            }
        )["tool_choice"]
        == "required"
    )


def test_the_same_translation_serves_each_fallback_model() -> None:
    raw = dumps(ROUND_TRIP_CHAT)
    t = translation("chat.completions", "messages", raw)
    assert t.operation == "messages"
    assert orjson.loads(t.request(raw, "claude-a"))["model"] == "claude-a"
    assert orjson.loads(t.request(raw, "claude-b"))["model"] == "claude-b"
    changed = dumps(ROUND_TRIP_CHAT | {"max_completion_tokens": 7})  # e.g. a cap the policy set after
    assert orjson.loads(t.request(changed, "claude-a"))["max_tokens"] == 7
    assert translation("messages", "chat.completions", dumps(ROUND_TRIP_MESSAGES)).operation == "chat.completions"


# What cannot be carried over.

_CHAT = {"model": "x", "messages": [{"role": "user", "content": "u"}]}
_MESSAGES = {"model": "x", "max_tokens": 5, "messages": [{"role": "user", "content": "u"}]}


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"n": 2}, "n > 1"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"audio": {"voice": "alloy", "format": "wav"}, "modalities": ["text", "audio"]}, "audio"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"web_search_options": {}}, "web_search_options"),
        ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "'custom' tools"),
        ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}, "input_audio"),
        ({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]}, "file_id"),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}],
                    }
                ]
            },
            "arguments",
        ),
    ],
)
def test_untranslatable_chat_requests(extra: dict[str, Any], named: str) -> None:
    with pytest.raises(Untranslatable) as caught:
        chat_client(_CHAT | extra)
    message = str(caught.value)
    assert named in message and "\n" not in message
    assert isinstance(caught.value, ProviderError)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "web_search_20250305"),
        ({"mcp_servers": [{"type": "url", "url": "https://x", "name": "x"}]}, "mcp_servers"),
        ({"container": "c"}, "container"),
        ({"stop_sequences": ["a", "b", "c", "d", "e"]}, "more than 4 stop_sequences"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}
                ]
            },
            "'file' source",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "document", "source": {"type": "url", "url": "https://x"}}]}
                ]
            },
            "'url' source",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "t",
                                "content": [{"type": "image", "source": {"type": "url", "url": "https://x"}}],
                            }
                        ],
                    }
                ]
            },
            "'image' blocks in a tool_result",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "content": [{"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}],
                    }
                ]
            },
            "server_tool_use",
        ),
    ],
)
def test_untranslatable_messages_requests(extra: dict[str, Any], named: str) -> None:
    with pytest.raises(Untranslatable) as caught:
        messages_client(_MESSAGES | extra)
    assert named in str(caught.value) and "\n" not in str(caught.value)


def test_untranslatable_pairs_and_bodies() -> None:
    with pytest.raises(Untranslatable, match="responses"):
        translation("responses", "messages", dumps(_CHAT))
    with pytest.raises(Untranslatable, match="not valid JSON"):
        translation("chat.completions", "messages", b"{nope")


# Errors.


@pytest.mark.parametrize(
    ("status", "anthropic_type", "openai_type"),
    [
        (400, "invalid_request_error", "invalid_request_error"),
        (401, "authentication_error", "authentication_error"),
        (403, "permission_error", "permission_error"),
        (404, "not_found_error", "not_found_error"),
        (429, "rate_limit_error", "rate_limit_error"),
        (500, "api_error", "server_error"),
        (529, "overloaded_error", "server_error"),
        (503, "overloaded_error", "server_error"),
    ],
)
def test_errors_map_by_status_and_keep_the_message(status: int, anthropic_type: str, openai_type: str) -> None:
    openai_body = dumps({"error": {"message": "boom", "type": "whatever", "param": None, "code": "c1"}})
    out = orjson.loads(messages_client(_MESSAGES).error(status, openai_body))
    assert out == {"type": "error", "error": {"type": anthropic_type, "message": "boom"}}
    anthropic_body = dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    out = orjson.loads(chat_client(_CHAT).error(status, anthropic_body))
    assert out == {"error": {"message": "Overloaded", "type": openai_type, "param": None, "code": "overloaded_error"}}


def test_junk_error_bodies_are_wrapped_not_raised() -> None:
    html = b"<html><body>502 Bad Gateway</body></html>"
    assert orjson.loads(chat_client(_CHAT).error(502, html))["error"]["message"] == html.decode()
    assert orjson.loads(messages_client(_MESSAGES).error(502, b""))["error"]["message"] == "HTTP 502 from the provider"
    assert (
        orjson.loads(messages_client(_MESSAGES).error(400, b"\xff\xfe[1,2]"))["error"]["type"]
        == "invalid_request_error"
    )
    long = orjson.loads(chat_client(_CHAT).error(500, b"x" * 10_000))["error"]["message"]
    assert len(long) < 2100
