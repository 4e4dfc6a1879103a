"""Anthropic Messages: POST /v1/messages (JSON or SSE) and POST /v1/messages/count_tokens.

`input_tokens` excludes cache reads and writes, which are reported apart. A stream's message_start
carries the input side; message_delta carries cumulative usage (output and, as the API now sends,
the input and cache counts again).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from fiscus.emulator import sse
from fiscus.emulator.caching import AnthropicCache, Breakpoint, anthropic_cache
from fiscus.emulator.dialects import ANTHROPIC, json_response
from fiscus.emulator.faults import sleep_ms
from fiscus.emulator.gate import Call, admit
from fiscus.emulator.ids import new_id
from fiscus.emulator.openai_chat import cap_of
from fiscus.emulator.reply import Completion, ToolSpec, choose_tool, plan
from fiscus.emulator.state import EmulatorState
from fiscus.emulator.tokens import canonical, count_text, media_placeholder
from fiscus.shaping.cache_minimums import anthropic_min_tokens

THINKING_SUMMARY = "Emulated reasoning, summarised."


def _block_text(block: Any) -> str:
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        return ""
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind == "thinking":
        return str(block.get("thinking", ""))
    if kind in ("image", "document"):
        return media_placeholder(block.get("source"))
    if kind == "tool_result":
        content = block.get("content")
        inner = content if isinstance(content, str) else "".join(_block_text(b) for b in content or [])
        return "<|tool_result|>" + inner
    return canonical({k: v for k, v in block.items() if k != "cache_control"})


def render(body: dict[str, Any]) -> tuple[str, list[int], list[Breakpoint]]:
    """The prompt in cache order (tools, system, messages), where each block ends, and the breakpoints:
    each `cache_control` block, plus the last block when the request sets a top-level `cache_control`."""
    out: list[str] = []
    ends: list[int] = []
    marks: list[Breakpoint] = []
    length = 0

    def add(text: str, block: Any = None) -> None:
        nonlocal length
        out.append(text)
        length += len(text)
        if block is None:
            return  # a role marker, not a content block
        ends.append(length)
        control = block.get("cache_control") if isinstance(block, dict) else None
        if isinstance(control, dict) and control.get("type") == "ephemeral":
            marks.append(Breakpoint(length, str(control.get("ttl", "5m"))))

    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            add("<|tool|>" + canonical({k: v for k, v in tool.items() if k != "cache_control"}), tool)
    system = body.get("system")
    if system:
        add("<|system|>")
        for block in [system] if isinstance(system, str) else system:
            add(_block_text(block), block)
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        add(f"<|{message.get('role', 'user')}|>")
        content = message.get("content")
        for block in [content] if isinstance(content, str) else content or []:
            add(_block_text(block), block)
    automatic = body.get("cache_control")
    if isinstance(automatic, dict) and automatic.get("type") == "ephemeral" and ends:
        marks.append(Breakpoint(ends[-1], str(automatic.get("ttl", "5m"))))
    return "".join(out), ends, marks


def _tools(body: dict[str, Any]) -> tuple[list[ToolSpec], str | None]:
    choice = body.get("tool_choice")
    choice = choice if isinstance(choice, dict) else {}
    if choice.get("type") == "none":
        return [], None
    tools = [
        ToolSpec(str(tool.get("name", "")), tool.get("input_schema") or {})
        for tool in body.get("tools") or []
        if isinstance(tool, dict) and "input_schema" in tool
    ]
    forced = {"any": "any", "tool": choice.get("name")}.get(choice.get("type", ""))
    return tools, forced


def _last_user(messages: list[Any]) -> tuple[str, bool]:
    """Text of the last user turn, and whether that turn returns tool results."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            blocks = [content] if isinstance(content, str) else content or []
            texts = (b for b in blocks if isinstance(b, str) or (isinstance(b, dict) and b.get("type") == "text"))
            text = "".join(_block_text(b) for b in texts)
            returns_tool = any(isinstance(b, dict) and b.get("type") == "tool_result" for b in blocks)
            return text, returns_tool
    return "", False


def _usage(total: int, cache: AnthropicCache, completion: Completion, thinking: bool) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "input_tokens": total - cache.read - cache.write,
        "cache_creation_input_tokens": cache.write,
        "cache_read_input_tokens": cache.read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": cache.write_5m,
            "ephemeral_1h_input_tokens": cache.write_1h,
        },
        "output_tokens": completion.output_tokens,
        "service_tier": "standard",
    }
    if thinking and completion.reasoning_tokens:
        usage["output_tokens_details"] = {"thinking_tokens": completion.reasoning_tokens}
    return usage


def _stop_reason(completion: Completion) -> str:
    if completion.tool_call is not None:
        return "tool_use"
    return "max_tokens" if completion.truncated else "end_turn"


def _content(completion: Completion, thinking: bool) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if thinking and completion.reasoning_tokens:
        signature = base64.b64encode(hashlib.sha256(completion.text.encode()).digest()).decode()
        blocks.append({"type": "thinking", "thinking": THINKING_SUMMARY, "signature": signature})
    call = completion.tool_call
    if call is not None:
        blocks.append(
            {"type": "tool_use", "id": "toolu_01" + call.id_suffix, "name": call.name, "input": call.arguments}
        )
    elif completion.pieces or not blocks:
        blocks.append({"type": "text", "text": completion.text})
    return blocks


async def messages(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    call = await admit(request, state, ANTHROPIC, "anthropic.messages")
    if isinstance(call, Response):
        return call
    body, steer = call.body, call.steer
    turns = body.get("messages")
    if not isinstance(turns, list) or not turns:
        return call.error(400, "messages: Field required")
    cap = cap_of(body, "max_tokens")
    if cap is None or isinstance(cap, str):
        return call.error(400, cap or "max_tokens: Field required")
    rendered, ends, marks = render(body)
    total = count_text(rendered)
    refused = call.charge(total + cap)
    if refused is not None:
        return refused
    minimum = state.config.anthropic_min_cache_tokens or anthropic_min_tokens(call.model)
    cache = anthropic_cache(state.prompt_cache, call.model, rendered, ends, marks, minimum)
    tools, forced = _tools(body)
    user_text, returns_tool = _last_user(turns)
    completion = plan(
        user_text, choose_tool(tools, forced, user_text, returns_tool, steer), cap, steer, state.config.seed
    )
    thinking = (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")
    state.stats.record_usage(
        input_tokens=total,
        output_tokens=completion.output_tokens,
        reasoning=completion.reasoning_tokens,
        read=cache.read,
        write=cache.write,
    )
    usage = _usage(total, cache, completion, thinking)
    message = {
        "id": new_id("msg_01", 22),
        "type": "message",
        "role": "assistant",
        "model": call.model,
        "content": _content(completion, thinking),
        "stop_reason": _stop_reason(completion),
        "stop_sequence": None,
        "usage": usage,
    }
    if body.get("stream"):
        state.stats.streams += 1
        await sleep_ms(steer.latency_ms)
        return sse.stream(_frames(state, call, message, completion), call.headers)
    await sleep_ms(steer.latency_ms + steer.token_latency_ms * completion.output_tokens)
    return json_response(message, headers=call.headers)


async def count_tokens(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    call = await admit(request, state, ANTHROPIC, "anthropic.count_tokens")
    if isinstance(call, Response):
        return call
    rendered, _, _ = render(call.body)
    return json_response({"input_tokens": count_text(rendered)}, headers=call.headers)


def _deltas(block: dict[str, Any], completion: Completion) -> list[dict[str, Any]]:
    if block["type"] == "thinking":
        return [
            {"type": "thinking_delta", "thinking": block["thinking"]},
            {"type": "signature_delta", "signature": block["signature"]},
        ]
    if block["type"] == "tool_use":
        text = completion.tool_call.arguments_json if completion.tool_call else "{}"
        return [{"type": "input_json_delta", "partial_json": text[i : i + 4]} for i in range(0, len(text), 4)]
    return [{"type": "text_delta", "text": piece} for piece in completion.pieces]


def _opening(block: dict[str, Any]) -> dict[str, Any]:
    empty = {"thinking": {"thinking": "", "signature": ""}, "tool_use": {"input": {}}, "text": {"text": ""}}
    return {**block, **empty.get(block["type"], {})}


async def _frames(
    state: EmulatorState, call: Call, message: dict[str, Any], completion: Completion
) -> AsyncIterator[bytes]:
    pacer = sse.Pacer(call.steer.token_latency_ms)
    cut = call.steer.stream_cut_after
    usage = message["usage"]
    start_usage = {**usage, "output_tokens": min(1, usage["output_tokens"])}
    start_usage.pop("output_tokens_details", None)
    opening = {**message, "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}
    yield sse.event("message_start", {"type": "message_start", "message": opening})
    await pacer.tokens(completion.reasoning_tokens)
    sent = 0
    for index, block in enumerate(message["content"]):
        start = {"type": "content_block_start", "index": index, "content_block": _opening(block)}
        yield sse.event("content_block_start", start)
        if index == 0:
            yield sse.event("ping", {"type": "ping"})
        for delta in _deltas(block, completion):
            if cut is not None and sent >= cut:
                state.stats.streams_cut += 1
                raise sse.StreamCut
            sent += 1
            if block["type"] != "thinking":
                await pacer.tokens(1)
            yield sse.event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
        yield sse.event("content_block_stop", {"type": "content_block_stop", "index": index})
    if cut is not None:
        state.stats.streams_cut += 1
        raise sse.StreamCut
    final_usage = {k: v for k, v in usage.items() if k not in ("cache_creation", "service_tier")}
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    yield sse.event("message_delta", {"type": "message_delta", "delta": delta, "usage": final_usage})
    yield sse.event("message_stop", {"type": "message_stop"})
