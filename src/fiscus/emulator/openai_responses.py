"""OpenAI Responses: POST /v1/responses, as a JSON body or the `response.*` event sequence.

A stream opens with response.created / response.in_progress, emits output items and text deltas, and
ends with response.completed, or response.incomplete when max_output_tokens cut the answer; only that
last event carries `response.usage`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from fiscus.emulator import sse
from fiscus.emulator.dialects import OPENAI, json_response
from fiscus.emulator.faults import sleep_ms
from fiscus.emulator.gate import Call, admit
from fiscus.emulator.openai_chat import cached_prompt_tokens, cap_of
from fiscus.emulator.reply import Completion, ToolSpec, choose_tool, plan
from fiscus.emulator.state import EmulatorState
from fiscus.emulator.tokens import canonical, count_text, media_placeholder


@dataclass(slots=True)
class _Ids:
    """The identifiers one response and its output items keep from creation to completion."""

    tool: bool
    response: str = field(init=False)
    reasoning: str = field(init=False)
    item: str = field(init=False)
    created: int = field(init=False)

    def __post_init__(self) -> None:
        self.response = "resp_" + secrets.token_hex(24)
        self.reasoning = "rs_" + secrets.token_hex(24)
        self.item = ("fc_" if self.tool else "msg_") + secrets.token_hex(24)
        self.created = int(time.time())


def _items(body: dict[str, Any]) -> list[dict[str, Any]]:
    value = body.get("input")
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return [item for item in value or [] if isinstance(item, dict)]


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for part in content or []:
        if isinstance(part, dict) and part.get("type") in ("input_text", "output_text", "text"):
            parts.append(str(part.get("text", "")))
        elif isinstance(part, dict):
            parts.append(media_placeholder(part))
    return "".join(parts)


def render(body: dict[str, Any], items: list[dict[str, Any]]) -> str:
    out: list[str] = []
    if body.get("tools"):
        out.append("<|tools|>" + canonical(body["tools"]))
    if isinstance(body.get("instructions"), str):
        out.append("<|developer|>" + body["instructions"])
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            out.append(f"<|{item.get('role', 'user')}|>" + _content_text(item.get("content")))
        elif kind == "function_call_output":
            out.append("<|tool|>" + (item["output"] if isinstance(item.get("output"), str) else canonical(item)))
        else:
            out.append(canonical(item))
    return "".join(out)


def _tools(body: dict[str, Any]) -> tuple[list[ToolSpec], str | None]:
    choice = body.get("tool_choice")
    if choice == "none":
        return [], None
    tools = [
        ToolSpec(str(tool.get("name", "")), tool.get("parameters") or {})
        for tool in body.get("tools") or []
        if isinstance(tool, dict) and tool.get("type") == "function"
    ]
    if choice == "required":
        return tools, "any"
    if isinstance(choice, dict) and choice.get("type") == "function":
        return tools, choice.get("name")
    return tools, None


def _output(completion: Completion, ids: _Ids, done: bool) -> list[dict[str, Any]]:
    """Output items; with done=False, their shapes as first announced in a stream."""
    items: list[dict[str, Any]] = []
    if completion.reasoning_tokens:
        items.append({"id": ids.reasoning, "type": "reasoning", "summary": []})
    call = completion.tool_call
    if call is not None:
        items.append(
            {
                "id": ids.item,
                "type": "function_call",
                "status": "completed" if done else "in_progress",
                "arguments": call.arguments_json if done else "",
                "call_id": "call_" + call.id_suffix,
                "name": call.name,
            }
        )
        return items
    status = ("incomplete" if completion.truncated else "completed") if done else "in_progress"
    content = [_text_part(completion.text)] if done else []
    items.append({"id": ids.item, "type": "message", "status": status, "content": content, "role": "assistant"})
    return items


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _response(
    call: Call, ids: _Ids, completion: Completion, usage: dict[str, Any] | None, done: bool
) -> dict[str, Any]:
    body = call.body
    status = "in_progress"
    if done:
        status = "incomplete" if completion.truncated else "completed"
    return {
        "id": ids.response,
        "object": "response",
        "created_at": ids.created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if done and completion.truncated else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": call.model,
        "output": _output(completion, ids, True) if done else [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": (body.get("reasoning") or {}).get("effort"), "summary": None},
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": usage if done else None,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


async def responses(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    call = await admit(request, state, OPENAI, "openai.responses")
    if isinstance(call, Response):
        return call
    body, steer = call.body, call.steer
    if body.get("input") is None and not body.get("previous_response_id"):
        return call.error(400, "Missing required parameter: 'input'.", param="input")
    cap = cap_of(body, "max_output_tokens")
    if isinstance(cap, str):
        return call.error(400, cap, param="max_output_tokens")
    items = _items(body)
    rendered = render(body, items)
    input_tokens = count_text(rendered)
    refused = call.charge(input_tokens + (cap or steer.reply_tokens))
    if refused is not None:
        return refused
    cached = cached_prompt_tokens(state, call, rendered, input_tokens)
    tools, forced = _tools(body)
    user_messages = [item for item in items if item.get("type", "message") == "message" and item.get("role") == "user"]
    user_text = _content_text(user_messages[-1].get("content")) if user_messages else ""
    after_tool = bool(items) and items[-1].get("type") == "function_call_output"
    completion = plan(
        user_text, choose_tool(tools, forced, user_text, after_tool, steer), cap, steer, state.config.seed
    )
    state.stats.record_usage(
        input_tokens=input_tokens,
        output_tokens=completion.output_tokens,
        reasoning=completion.reasoning_tokens,
        read=cached,
    )
    usage = {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": completion.output_tokens,
        "output_tokens_details": {"reasoning_tokens": completion.reasoning_tokens},
        "total_tokens": input_tokens + completion.output_tokens,
    }
    ids = _Ids(tool=completion.tool_call is not None)
    if body.get("stream"):
        state.stats.streams += 1
        await sleep_ms(steer.latency_ms)
        # Both envelopes are built here, so a body the emulator cannot read fails before the stream starts.
        opening = _response(call, ids, completion, None, False)
        closing = _response(call, ids, completion, usage, True)
        return sse.stream(_frames(state, call, ids, completion, opening, closing), call.headers)
    await sleep_ms(steer.latency_ms + steer.token_latency_ms * completion.output_tokens)
    return json_response(_response(call, ids, completion, usage, True), headers=call.headers)


def _item_events(completion: Completion, ids: _Ids) -> Iterator[tuple[str, dict[str, Any]]]:
    """Everything between response.in_progress and the closing event; deltas are marked with "delta"."""
    started = _output(completion, ids, False)
    finished = _output(completion, ids, True)
    for index, (first, last) in enumerate(zip(started, finished, strict=True)):
        yield "response.output_item.added", {"output_index": index, "item": first}
        where = {"item_id": last["id"], "output_index": index}
        if last["type"] == "function_call":
            arguments = last["arguments"]
            for i in range(0, len(arguments), 4):
                yield "response.function_call_arguments.delta", {**where, "delta": arguments[i : i + 4]}
            yield "response.function_call_arguments.done", {**where, "arguments": arguments}
        elif last["type"] == "message":
            part = {**where, "content_index": 0}
            yield "response.content_part.added", {**part, "part": _text_part("")}
            for piece in completion.pieces:
                yield "response.output_text.delta", {**part, "delta": piece, "logprobs": []}
            yield "response.output_text.done", {**part, "text": completion.text, "logprobs": []}
            yield "response.content_part.done", {**part, "part": _text_part(completion.text)}
        yield "response.output_item.done", {"output_index": index, "item": last}


async def _frames(
    state: EmulatorState,
    call: Call,
    ids: _Ids,
    completion: Completion,
    opening: dict[str, Any],
    closing: dict[str, Any],
) -> AsyncIterator[bytes]:
    pacer = sse.Pacer(call.steer.token_latency_ms)
    cut = call.steer.stream_cut_after
    sequence = 0

    def frame(name: str, payload: dict[str, Any]) -> bytes:
        nonlocal sequence
        sequence += 1
        return sse.event(name, {"type": name, "sequence_number": sequence - 1, **payload})

    yield frame("response.created", {"response": opening})
    yield frame("response.in_progress", {"response": opening})
    await pacer.tokens(completion.reasoning_tokens)
    deltas = 0
    for name, payload in _item_events(completion, ids):
        if name.endswith(".delta"):
            if cut is not None and deltas >= cut:
                break
            deltas += 1
            await pacer.tokens(1)
        yield frame(name, payload)
    if cut is not None:
        state.stats.streams_cut += 1
        raise sse.StreamCut
    name = "response.incomplete" if completion.truncated else "response.completed"
    yield frame(name, {"response": closing})
