"""Partial answers: a well-formed reply in the caller's own protocol that says the budget is exhausted.

When a budget's action is `partial`, no model is called; the caller still gets a normal, parseable answer
(HTTP 200) that ends the way a length-capped answer ends — OpenAI chat `finish_reason: "length"`, Responses
`status: "incomplete"`, Anthropic `stop_reason: "max_tokens"` — so agents stop cleanly instead of crashing
on an error. Pure functions: a protocol name and text in, a body (dict) or SSE event bytes out.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson

OPENAI_CHAT = "openai_chat"
OPENAI_RESPONSES = "openai_responses"
ANTHROPIC = "anthropic"
PROTOCOLS = (OPENAI_CHAT, OPENAI_RESPONSES, ANTHROPIC)


def exhausted_text(message: str = "") -> str:
    """The text of a partial answer: plain about what happened, so a human reading a transcript knows."""
    detail = f" ({message.rstrip('.')})" if message else ""
    return (
        f"[fiscus] The inference budget for this request is exhausted{detail}. "
        "No model was called and this answer is incomplete; retry after the budget resets or is raised."
    )


def partial_body(protocol: str, *, model: str, text: str, response_id: str | None = None) -> dict[str, Any]:
    """A complete, non-streamed reply in `protocol` carrying `text`, ended as if cut at the output cap."""
    if protocol == OPENAI_CHAT:
        return _chat_body(model, text, response_id or _id("chatcmpl-"))
    if protocol == OPENAI_RESPONSES:
        return _responses_body(model, text, response_id or _id("resp_"))
    if protocol == ANTHROPIC:
        return _anthropic_body(model, text, response_id or _id("msg_"))
    raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")


def partial_events(
    protocol: str, *, model: str, text: str, response_id: str | None = None, include_usage: bool = False
) -> list[bytes]:
    """The same reply as the SSE events a streaming client expects, each a complete `...\\n\\n` frame.

    `include_usage` adds OpenAI chat's usage-only final chunk (zero tokens), for clients that asked for it.
    """
    if protocol == OPENAI_CHAT:
        return _chat_events(model, text, response_id or _id("chatcmpl-"), include_usage)
    if protocol == OPENAI_RESPONSES:
        return _responses_events(model, text, response_id or _id("resp_"))
    if protocol == ANTHROPIC:
        return _anthropic_events(model, text, response_id or _id("msg_"))
    raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")


def _id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def _data(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\n" + _data(payload)


# --- OpenAI chat completions ---------------------------------------------------------------------------------

_CHAT_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def _chat_body(model: str, text: str, rid: str) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "length",
            }
        ],
        "usage": dict(_CHAT_USAGE),
    }


def _chat_events(model: str, text: str, rid: str, include_usage: bool) -> list[bytes]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": rid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    events = [
        _data(chunk({"role": "assistant", "content": ""}, None)),
        _data(chunk({"content": text}, None)),
        _data(chunk({}, "length")),
    ]
    if include_usage:
        usage_chunk = {
            "id": rid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            "usage": dict(_CHAT_USAGE),
        }
        events.append(_data(usage_chunk))
    events.append(b"data: [DONE]\n\n")
    return events


# --- OpenAI Responses ------------------------------------------------------------------------------------------

_RESPONSES_USAGE = {
    "input_tokens": 0,
    "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
    "output_tokens": 0,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 0,
}


def _responses_message(text: str, item_id: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def _responses_body(model: str, text: str, rid: str, item_id: str | None = None) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "response",
        "created_at": int(time.time()),
        "status": "incomplete",
        "incomplete_details": {"reason": "max_output_tokens"},
        "error": None,
        "model": model,
        "output": [_responses_message(text, item_id or _id("msg_"), "incomplete")],
        "output_text": text,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": dict(_RESPONSES_USAGE),
    }


def _responses_events(model: str, text: str, rid: str) -> list[bytes]:
    item_id = _id("msg_")
    final = _responses_body(model, text, rid, item_id)
    final.pop("output_text")
    started = {**final, "status": "in_progress", "incomplete_details": None, "output": [], "usage": None}
    part = {"type": "output_text", "text": "", "annotations": []}
    seq = iter(range(1_000))

    def ev(name: str, **fields: Any) -> bytes:
        return _event(name, {"type": name, "sequence_number": next(seq), **fields})

    return [
        ev("response.created", response=started),
        ev("response.in_progress", response=started),
        ev(
            "response.output_item.added",
            output_index=0,
            item={**_responses_message("", item_id, "in_progress"), "content": []},
        ),
        ev("response.content_part.added", item_id=item_id, output_index=0, content_index=0, part=part),
        ev("response.output_text.delta", item_id=item_id, output_index=0, content_index=0, delta=text, logprobs=[]),
        ev("response.output_text.done", item_id=item_id, output_index=0, content_index=0, text=text, logprobs=[]),
        ev(
            "response.content_part.done",
            item_id=item_id,
            output_index=0,
            content_index=0,
            part={**part, "text": text},
        ),
        ev("response.output_item.done", output_index=0, item=_responses_message(text, item_id, "incomplete")),
        ev("response.incomplete", response=final),
    ]


# --- Anthropic messages ------------------------------------------------------------------------------------------

_ANTHROPIC_USAGE = {
    "input_tokens": 0,
    "output_tokens": 0,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
}


def _anthropic_body(model: str, text: str, rid: str) -> dict[str, Any]:
    return {
        "id": rid,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "max_tokens",
        "stop_sequence": None,
        "usage": dict(_ANTHROPIC_USAGE),
    }


def _anthropic_events(model: str, text: str, rid: str) -> list[bytes]:
    start = {**_anthropic_body(model, text, rid), "content": [], "stop_reason": None}
    return [
        _event("message_start", {"type": "message_start", "message": start}),
        _event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        _event(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
        ),
        _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
                "usage": {"output_tokens": 0},
            },
        ),
        _event("message_stop", {"type": "message_stop"}),
    ]
