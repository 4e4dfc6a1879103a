"""Gemini: POST /v1beta/models/{model}:generateContent, :streamGenerateContent (SSE with ?alt=sse, else
a streamed JSON array), :countTokens, and POST /v1beta/cachedContents for explicit caches.

`promptTokenCount` includes `cachedContentTokenCount`; `totalTokenCount` adds candidates and thoughts.
A request naming a `cachedContent` this instance did not create is served as if it existed, with
`x-emulator-cached-tokens` (or the config) saying how large it is.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from fiscus.emulator import sse
from fiscus.emulator.caching import prefix_cached_tokens
from fiscus.emulator.dialects import GEMINI, json_response
from fiscus.emulator.faults import sleep_ms
from fiscus.emulator.gate import Call, admit
from fiscus.emulator.ids import new_id
from fiscus.emulator.reply import Completion, ToolSpec, choose_tool, plan
from fiscus.emulator.state import EmulatorState, GeminiCachedContent
from fiscus.emulator.tokens import canonical, count_text, media_placeholder
from fiscus.shaping.cache_minimums import gemini_min_tokens

CHUNK_PIECES = 8  # Gemini streams a few tokens per event, not one
_DEFAULT_CACHE_TTL_S = 3600.0


def _get(mapping: dict[str, Any], camel: str, snake: str) -> Any:
    """REST accepts both spellings; SDKs send camelCase."""
    return mapping.get(camel, mapping.get(snake))


def _part_text(part: Any) -> str:
    if not isinstance(part, dict):
        return ""
    if "text" in part:
        return str(part["text"])
    if "inlineData" in part or "inline_data" in part or "fileData" in part or "file_data" in part:
        return media_placeholder(part)
    return canonical(part)


def _parts_text(content: Any) -> str:
    return "".join(_part_text(p) for p in (content or {}).get("parts") or []) if isinstance(content, dict) else ""


def render(body: dict[str, Any]) -> str:
    out: list[str] = []
    system = _get(body, "systemInstruction", "system_instruction")
    if system:
        out.append("<|system|>" + _parts_text(system))
    if body.get("tools"):
        out.append("<|tools|>" + canonical(body["tools"]))
    for content in body.get("contents") or []:
        if isinstance(content, dict):
            out.append(f"<|{content.get('role', 'user')}|>" + _parts_text(content))
    return "".join(out)


def _tools(body: dict[str, Any]) -> tuple[list[ToolSpec], str | None]:
    config = _get(_get(body, "toolConfig", "tool_config") or {}, "functionCallingConfig", "function_calling_config")
    mode = str((config or {}).get("mode", "AUTO")).upper()
    if mode == "NONE":
        return [], None
    tools = [
        ToolSpec(str(declaration.get("name", "")), declaration.get("parameters") or {})
        for tool in body.get("tools") or []
        for declaration in _get(tool, "functionDeclarations", "function_declarations") or []
    ]
    if mode == "ANY":
        allowed = _get(config, "allowedFunctionNames", "allowed_function_names") or []
        return tools, allowed[0] if allowed else "any"
    return tools, None


def _usage(prompt: int, cached: int, completion: Completion, final: bool) -> dict[str, Any]:
    usage: dict[str, Any] = {"promptTokenCount": prompt}
    if final:
        usage["candidatesTokenCount"] = completion.output_tokens - completion.reasoning_tokens
    usage["totalTokenCount"] = prompt + (completion.output_tokens if final else 0)
    if cached:
        usage["cachedContentTokenCount"] = cached
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    if cached:
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
    if final and completion.reasoning_tokens:
        usage["thoughtsTokenCount"] = completion.reasoning_tokens
    return usage


def _cached_tokens(state: EmulatorState, call: Call) -> int:
    name = _get(call.body, "cachedContent", "cached_content")
    if not name:
        return 0
    entry = state.gemini_caches.get(str(name))
    if entry is not None and entry.expires_at > state.config.clock():
        return entry.tokens
    override = call.steer.cached_tokens
    return override if override is not None else state.config.gemini_cached_content_tokens


def _implicit_cached_tokens(state: EmulatorState, model: str, rendered: str, prompt: int) -> int:
    """Gemini 2.5 and newer cache a repeated prompt prefix by themselves (no `cachedContent` needed)."""
    minimum = gemini_min_tokens(model)
    if minimum is None:
        return 0
    ttl = state.config.gemini_implicit_cache_ttl_s
    return prefix_cached_tokens(state.prompt_cache, f"gemini|{model}", rendered, prompt, minimum, ttl)


async def model_action(request: Request) -> Response:
    """Dispatch `{model}:{method}`, the Google REST custom-method form."""
    model, _, method = request.path_params["target"].rpartition(":")
    if method in ("generateContent", "streamGenerateContent"):
        return await _generate(request, model, method == "streamGenerateContent")
    if method == "countTokens":
        return await _count_tokens(request, model)
    return GEMINI.error(404, f"Method {method!r} is not found.")


async def _count_tokens(request: Request, model: str) -> Response:
    state: EmulatorState = request.app.state.emulator
    call = await admit(request, state, GEMINI, "gemini.count_tokens", model)
    if isinstance(call, Response):
        return call
    request_body = call.body.get("generateContentRequest") or call.body
    return json_response({"totalTokens": count_text(render(request_body))}, headers=call.headers)


async def _generate(request: Request, model: str, streaming: bool) -> Response:
    state: EmulatorState = request.app.state.emulator
    endpoint = "gemini.stream_generate_content" if streaming else "gemini.generate_content"
    call = await admit(request, state, GEMINI, endpoint, model)
    if isinstance(call, Response):
        return call
    body, steer = call.body, call.steer
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return call.error(400, "* GenerateContentRequest.contents: contents is not specified")
    generation = _get(body, "generationConfig", "generation_config") or {}
    cap = _get(generation, "maxOutputTokens", "max_output_tokens")
    if cap is not None and (not isinstance(cap, int) or cap < 1):
        return call.error(400, "* GenerateContentRequest.generation_config.max_output_tokens: must be positive")
    named = _cached_tokens(state, call)
    rendered = render(body)
    prompt = count_text(rendered) + named
    cached = named or _implicit_cached_tokens(state, call.model, rendered, prompt)
    refused = call.charge(prompt + (cap or steer.reply_tokens))
    if refused is not None:
        return refused
    tools, forced = _tools(body)
    users = [c for c in contents if isinstance(c, dict) and c.get("role", "user") == "user"]
    user_text = "".join(_part_text(p) for p in users[-1].get("parts") or [] if "text" in p) if users else ""
    last_parts = contents[-1].get("parts") or [] if isinstance(contents[-1], dict) else []
    after_tool = any(isinstance(p, dict) and ("functionResponse" in p or "function_response" in p) for p in last_parts)
    completion = plan(
        user_text, choose_tool(tools, forced, user_text, after_tool, steer), cap, steer, state.config.seed
    )
    state.stats.record_usage(
        input_tokens=prompt, output_tokens=completion.output_tokens, reasoning=completion.reasoning_tokens, read=cached
    )
    head = {"modelVersion": call.model, "responseId": new_id("", 22)}
    if streaming:
        state.stats.streams += 1
        await sleep_ms(steer.latency_ms)
        as_sse = request.query_params.get("alt") == "sse"
        frames = _frames(state, call, head, completion, prompt, cached, as_sse)
        media = "text/event-stream" if as_sse else "application/json"
        return StreamingResponse(frames, media_type=media, headers=call.headers)
    parts = _final_parts(completion, completion.text)
    body_out = {
        "candidates": [_candidate(parts, completion)],
        "usageMetadata": _usage(prompt, cached, completion, True),
    }
    await sleep_ms(steer.latency_ms + steer.token_latency_ms * completion.output_tokens)
    return json_response({**body_out, **head}, headers=call.headers)


def _final_parts(completion: Completion, text: str) -> list[dict[str, Any]]:
    call = completion.tool_call
    if call is not None:
        return [{"functionCall": {"name": call.name, "args": call.arguments}}]
    return [{"text": text}]


def _candidate(parts: list[dict[str, Any]], completion: Completion | None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
    if completion is not None:
        candidate["finishReason"] = "MAX_TOKENS" if completion.truncated else "STOP"
    candidate["index"] = 0
    return candidate


async def _frames(
    state: EmulatorState,
    call: Call,
    head: dict[str, Any],
    completion: Completion,
    prompt: int,
    cached: int,
    as_sse: bool,
) -> AsyncIterator[bytes]:
    pacer = sse.Pacer(call.steer.token_latency_ms)
    cut = call.steer.stream_cut_after
    pieces = completion.pieces
    groups = [pieces[i : i + CHUNK_PIECES] for i in range(0, len(pieces), CHUNK_PIECES)] or [[]]
    first = True

    def encode(payload: dict[str, Any]) -> bytes:
        nonlocal first
        text = orjson.dumps(payload)
        if as_sse:
            return b"data: " + text + b"\r\n\r\n"
        frame = (b"[" if first else b",\r\n") + text
        first = False
        return frame

    await pacer.tokens(completion.reasoning_tokens)
    running = _usage(prompt, cached, completion, False)
    for sent, group in enumerate(groups[:-1]):
        if cut is not None and sent >= cut:
            break
        await pacer.tokens(len(group))
        yield encode({"candidates": [_candidate([{"text": "".join(group)}], None)], "usageMetadata": running, **head})
    if cut is not None:
        state.stats.streams_cut += 1
        raise sse.StreamCut
    await pacer.tokens(len(groups[-1]))
    parts = _final_parts(completion, "".join(groups[-1]))
    final = {"candidates": [_candidate(parts, completion)], "usageMetadata": _usage(prompt, cached, completion, True)}
    yield encode({**final, **head})
    if not as_sse:
        yield b"]"


def _timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def create_cached_content(request: Request) -> Response:
    """POST /v1beta/cachedContents: remember the contents' size so later requests can name them."""
    state: EmulatorState = request.app.state.emulator
    call = await admit(request, state, GEMINI, "gemini.cached_contents")
    if isinstance(call, Response):
        return call
    ttl_text = str(call.body.get("ttl") or "")
    match = re.fullmatch(r"(\d+(?:\.\d+)?)s", ttl_text)
    ttl = float(match.group(1)) if match else _DEFAULT_CACHE_TTL_S
    tokens = count_text(render(call.body))
    name = "cachedContents/" + new_id("", 12).lower()
    state.gemini_caches[name] = GeminiCachedContent(call.model, tokens, state.config.clock() + ttl)
    now = time.time()
    entry = {
        "name": name,
        "model": f"models/{call.model}",
        "createTime": _timestamp(now),
        "updateTime": _timestamp(now),
        "expireTime": _timestamp(now + ttl),
        "displayName": _get(call.body, "displayName", "display_name") or "",
        "usageMetadata": {"totalTokenCount": tokens},
    }
    return json_response(entry, headers=call.headers)
