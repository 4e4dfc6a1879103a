"""OpenAI Chat Completions: POST /v1/chat/completions, as a JSON body or `chat.completion.chunk` events.

Streams carry usage only when the request sets `stream_options.include_usage`, in a last chunk with
`choices: []`; every earlier chunk then has `"usage": null`, as the real API sends.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from fiscus.emulator import sse
from fiscus.emulator.caching import prefix_cached_tokens
from fiscus.emulator.dialects import OPENAI, json_response
from fiscus.emulator.faults import sleep_ms
from fiscus.emulator.gate import Call, admit
from fiscus.emulator.ids import new_id
from fiscus.emulator.reply import Completion, ToolSpec, choose_tool, plan
from fiscus.emulator.state import EmulatorState
from fiscus.emulator.tokens import canonical, count_text, media_placeholder
from fiscus.emulator.vendor_usage import vendor_usage
from fiscus.shaping.cache_minimums import OPENAI_MIN_TOKENS

EXTENDED_RETENTION_S = 24 * 3600.0


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts: list[str] = []
    for part in content:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in ("text", "input_text", "output_text", "refusal"):
            parts.append(str(part.get("text") or part.get("refusal") or ""))
        else:
            parts.append(media_placeholder(part))
    return "".join(parts)


def render(body: dict[str, Any]) -> str:
    """The prompt as one string, in the order OpenAI caches it: tools, output format, messages."""
    out: list[str] = []
    if body.get("tools"):
        out.append("<|tools|>" + canonical(body["tools"]))
    if body.get("response_format"):
        out.append("<|format|>" + canonical(body["response_format"]))
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        out.append(f"<|{message.get('role', 'user')}|>" + _content_text(message.get("content")))
        if message.get("tool_calls"):
            out.append(canonical(message["tool_calls"]))
    return "".join(out)


def last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


def offered_tools(body: dict[str, Any]) -> tuple[list[ToolSpec], str | None]:
    """Function tools and the forced choice (a name, "any" or None); tool_choice "none" hides them."""
    choice = body.get("tool_choice")
    if choice == "none":
        return [], None
    tools = [
        ToolSpec(str(tool["function"].get("name", "")), tool["function"].get("parameters") or {})
        for tool in body.get("tools") or []
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict)
    ]
    if choice == "required":
        return tools, "any"
    if isinstance(choice, dict):
        named = (choice.get("function") or {}).get("name") or choice.get("name")
        return tools, named
    return tools, None


def cap_of(body: dict[str, Any], *names: str) -> int | str | None:
    """The output cap, or an error message when it is not a positive integer."""
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            return f"Invalid '{name}': expected an integer of at least 1."
        return value
    return None


def fingerprint(model: str) -> str:
    return "fp_" + hashlib.sha256(model.encode()).hexdigest()[:10]


def cached_prompt_tokens(state: EmulatorState, call: Call, rendered: str, prompt_tokens: int) -> int:
    body = call.body
    scope = f"{call.model}|{body.get('prompt_cache_key') or ''}"
    ttl = EXTENDED_RETENTION_S if body.get("prompt_cache_retention") == "24h" else state.config.openai_cache_ttl_s
    minimum = state.config.openai_min_cache_tokens or OPENAI_MIN_TOKENS
    return prefix_cached_tokens(state.prompt_cache, scope, rendered, prompt_tokens, minimum, ttl)


def _usage(prompt_tokens: int, cached: int, completion: Completion) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion.output_tokens,
        "total_tokens": prompt_tokens + completion.output_tokens,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": completion.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _finish_reason(completion: Completion) -> str:
    if completion.tool_call is not None:
        return "tool_calls"
    return "length" if completion.truncated else "stop"


def _tool_calls(completion: Completion) -> list[dict[str, Any]]:
    call = completion.tool_call
    assert call is not None
    return [
        {
            "id": "call_" + call.id_suffix,
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments_json},
        }
    ]


async def chat_completions(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    call = await admit(request, state, OPENAI, "openai.chat")
    if isinstance(call, Response):
        return call
    body, steer = call.body, call.steer
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return call.error(
            400, "Missing required parameter: 'messages'.", param="messages", code="missing_required_parameter"
        )
    cap = cap_of(body, "max_completion_tokens", "max_tokens")
    if isinstance(cap, str):
        return call.error(400, cap, code="integer_below_min_value")
    rendered = render(body)
    prompt_tokens = count_text(rendered)
    refused = call.charge(prompt_tokens + (cap or steer.reply_tokens))
    if refused is not None:
        return refused
    cached = cached_prompt_tokens(state, call, rendered, prompt_tokens)
    tools, forced = offered_tools(body)
    user_text = last_user_text(messages)
    after_tool = isinstance(messages[-1], dict) and messages[-1].get("role") == "tool"
    tool = choose_tool(tools, forced, user_text, after_tool, steer)
    completion = plan(user_text, tool, cap, steer, state.config.seed)
    state.stats.record_usage(
        input_tokens=prompt_tokens,
        output_tokens=completion.output_tokens,
        reasoning=completion.reasoning_tokens,
        read=cached,
    )
    base = {
        "id": new_id("chatcmpl-", 29),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": call.model,
        "service_tier": "default",
        "system_fingerprint": fingerprint(call.model),
    }
    usage = vendor_usage(request, call.model, _usage(prompt_tokens, cached, completion), steer.cost)
    if body.get("stream"):
        state.stats.streams += 1
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        await sleep_ms(steer.latency_ms)
        frames = _frames(state, call, {**base, "object": "chat.completion.chunk"}, completion, usage, include_usage)
        return sse.stream(frames, call.headers)
    message: dict[str, Any] = {"role": "assistant", "content": completion.text, "refusal": None, "annotations": []}
    if completion.tool_call is not None:
        message["content"] = None
        message["tool_calls"] = _tool_calls(completion)
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": _finish_reason(completion)}
    await sleep_ms(steer.latency_ms + steer.token_latency_ms * completion.output_tokens)
    return json_response({**base, "choices": [choice], "usage": usage}, headers=call.headers)


async def _frames(
    state: EmulatorState,
    call: Call,
    base: dict[str, Any],
    completion: Completion,
    usage: dict[str, Any],
    include_usage: bool,
) -> AsyncIterator[bytes]:
    # Every chunk shares its envelope, so it is encoded once and only the delta per chunk.
    head = b"data: " + orjson.dumps(base)[:-1] + b',"choices":[{"index":0,"delta":'
    tail = b"}]" + (b',"usage":null' if include_usage else b"") + b"}\n\n"

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return head + orjson.dumps(delta) + b',"logprobs":null,"finish_reason":' + orjson.dumps(finish) + tail

    pacer = sse.Pacer(call.steer.token_latency_ms)
    cut = call.steer.stream_cut_after
    if completion.tool_call is not None:
        tool_call = _tool_calls(completion)[0]
        arguments = tool_call["function"]["arguments"]
        opening = {**tool_call, "index": 0, "function": {"name": tool_call["function"]["name"], "arguments": ""}}
        yield chunk({"role": "assistant", "content": None, "tool_calls": [opening], "refusal": None})
        deltas = [
            {"tool_calls": [{"index": 0, "function": {"arguments": arguments[i : i + 4]}}]}
            for i in range(0, len(arguments), 4)
        ]
    else:
        yield chunk({"role": "assistant", "content": "", "refusal": None})
        deltas = [{"content": piece} for piece in completion.pieces]
    await pacer.tokens(completion.reasoning_tokens)
    for sent, delta in enumerate(deltas):
        if cut is not None and sent >= cut:
            break
        await pacer.tokens(1)
        yield chunk(delta)
    if cut is not None:
        state.stats.streams_cut += 1
        raise sse.StreamCut
    yield chunk({}, _finish_reason(completion))
    if include_usage:
        yield sse.data({**base, "choices": [], "usage": usage})
    yield sse.DONE
