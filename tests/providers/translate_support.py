"""Shared data and helpers of the translation tests: bodies, provider streams, feeding and reading SSE."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic.types as at
import orjson
from pydantic import TypeAdapter

from fiscus.providers.translate import translation
from fiscus.usage.sse import parse_sse

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
