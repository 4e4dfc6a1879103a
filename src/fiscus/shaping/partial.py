"""Partial answers: a well-formed reply in the caller's own protocol that says why no model was called.

When a refusal's action is `partial` (budget exhausted, breaker open, loop detected, session ceiling), no model
is called; the caller still gets a normal, parseable answer (HTTP 200) so an agent stops cleanly instead of
crashing on an error. The answer is honest about it: it ends the way a finished answer ends — OpenAI chat
`finish_reason: "stop"`, Responses `status: "completed"`, Anthropic `stop_reason: "end_turn"` — never as if cut
at an output cap, and it carries a machine-readable marker, a top-level
`"fiscus": {"partial": true, "code": ..., "message": ..., "retry_after": ...}` object (in a stream: on the event
that ends the answer and on the last event), which the gateway also announces as the `x-fiscus-partial: <code>`
header. Pure functions: a protocol name and text in, a body (dict) or SSE event bytes out.
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

PARTIAL_HEADER = "x-fiscus-partial"  # its value: the marker's code
MARKER_KEY = "fiscus"  # the body's top-level key holding the marker
# Machine-readable codes of why no model was called (the marker's and an error's `code`).
BUDGET_EXHAUSTED = "budget_exhausted"
BREAKER_OPEN = "breaker_open"
LOOP_DETECTED = "loop_detected"
SESSION_CEILING = "session_ceiling"


def exhausted_text(message: str = "") -> str:
    """The text of a partial answer: plain about what happened, so a human reading a transcript knows."""
    detail = f" ({message.rstrip('.')})" if message else ""
    return (
        f"[fiscus] The inference budget for this request is exhausted{detail}. "
        "No model was called and this answer is incomplete; retry after the budget resets or is raised."
    )


def partial_marker(code: str = BUDGET_EXHAUSTED, message: str = "", retry_after: int | None = None) -> dict[str, Any]:
    """The machine-readable marker of a partial answer: why no model was called (`code`, `message`) and in how
    many whole seconds asking again may be answered (`retry_after`, None when unknown)."""
    return {"partial": True, "code": code, "message": message, "retry_after": retry_after}


def partial_body(
    protocol: str,
    *,
    model: str,
    text: str,
    response_id: str | None = None,
    code: str = BUDGET_EXHAUSTED,
    message: str | None = None,
    retry_after: int | None = None,
) -> dict[str, Any]:
    """A complete, non-streamed reply in `protocol` carrying `text`, ended as a finished answer, with the
    `fiscus` marker (`message` defaults to `text`)."""
    marker = partial_marker(code, text if message is None else message, retry_after)
    if protocol == OPENAI_CHAT:
        body = _chat_body(model, text, response_id or _id("chatcmpl-"))
    elif protocol == OPENAI_RESPONSES:
        body = _responses_body(model, text, response_id or _id("resp_"))
    elif protocol == ANTHROPIC:
        body = _anthropic_body(model, text, response_id or _id("msg_"))
    else:
        raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    body[MARKER_KEY] = marker
    return body


def partial_events(
    protocol: str,
    *,
    model: str,
    text: str,
    response_id: str | None = None,
    include_usage: bool = False,
    code: str = BUDGET_EXHAUSTED,
    message: str | None = None,
    retry_after: int | None = None,
) -> list[bytes]:
    """The same reply as the SSE events a streaming client expects, each a complete `...\\n\\n` frame; the
    marker rides on the event that ends the answer (chat: the `finish_reason` chunk; Responses:
    `response.completed`; Anthropic: `message_delta`) and on the last event.

    `include_usage` adds OpenAI chat's usage-only final chunk (zero tokens), for clients that asked for it.
    """
    marker = partial_marker(code, text if message is None else message, retry_after)
    if protocol == OPENAI_CHAT:
        return _chat_events(model, text, response_id or _id("chatcmpl-"), include_usage, marker)
    if protocol == OPENAI_RESPONSES:
        return _responses_events(model, text, response_id or _id("resp_"), marker)
    if protocol == ANTHROPIC:
        return _anthropic_events(model, text, response_id or _id("msg_"), marker)
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
                "finish_reason": "stop",
            }
        ],
        "usage": dict(_CHAT_USAGE),
    }


def _chat_events(model: str, text: str, rid: str, include_usage: bool, marker: dict[str, Any]) -> list[bytes]:
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
        _data(chunk({}, "stop") | {MARKER_KEY: marker}),
    ]
    if include_usage:
        usage_chunk = {
            "id": rid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            "usage": dict(_CHAT_USAGE),
            MARKER_KEY: marker,
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
        "status": "completed",
        "incomplete_details": None,
        "error": None,
        "model": model,
        "output": [_responses_message(text, item_id or _id("msg_"), "completed")],
        "output_text": text,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": dict(_RESPONSES_USAGE),
    }


def _responses_events(model: str, text: str, rid: str, marker: dict[str, Any]) -> list[bytes]:
    item_id = _id("msg_")
    final = _responses_body(model, text, rid, item_id)
    final.pop("output_text")
    started = {**final, "status": "in_progress", "output": [], "usage": None}
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
        ev("response.output_item.done", output_index=0, item=_responses_message(text, item_id, "completed")),
        # On the event and in its response, which the SDKs' stream helpers hand back as the final response.
        ev("response.completed", response=final | {MARKER_KEY: marker}, **{MARKER_KEY: marker}),
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
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": dict(_ANTHROPIC_USAGE),
    }


def _anthropic_events(model: str, text: str, rid: str, marker: dict[str, Any]) -> list[bytes]:
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
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 0},
                MARKER_KEY: marker,
            },
        ),
        _event("message_stop", {"type": "message_stop", MARKER_KEY: marker}),
    ]
