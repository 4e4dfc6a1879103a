"""Reading the official SDKs' response objects, and building partial answers as the SDKs' own objects.

Partial answers come from `fiscus.shaping.partial` (the same protocol dicts the gateway sends), turned into
SDK objects with `model_validate`, or, for streams, into the SDK's own `Stream` over an in-memory response,
so callers iterate the SDK's own chunk types.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

from fiscus.shaping.partial import partial_body, partial_events
from fiscus.usage import anthropic as anthropic_usage
from fiscus.usage import openai_chat, openai_responses
from fiscus.usage.model import Usage
from fiscus.usage.wire import WireFormat


def _dump(obj: Any) -> dict[str, Any]:
    return obj.model_dump() if hasattr(obj, "model_dump") else dict(obj)


def usage_of(fmt: WireFormat, response: Any) -> Usage | None:
    usage = getattr(response, "usage", None)
    if usage is None:
        return None
    if fmt is WireFormat.OPENAI_CHAT:
        return _chat_usage(usage)
    if fmt is WireFormat.OPENAI_RESPONSES:
        return openai_responses.usage_from_fields(_dump(usage))
    return anthropic_usage.usage_from_fields(_dump(usage))


def _chat_usage(usage: Any) -> Usage:
    """Chat usage read straight off the SDK object (the hot path); same rules as `usage.openai_chat`."""
    prompt = usage.prompt_tokens or 0
    output = usage.completion_tokens or 0
    details = usage.prompt_tokens_details
    cached = min((details.cached_tokens or 0) if details is not None else 0, prompt)
    out_details = usage.completion_tokens_details
    reasoning = min((out_details.reasoning_tokens or 0) if out_details is not None else 0, output)
    if not cached and details is None and _extra(usage, "prompt_cache_hit_tokens"):
        return openai_chat.usage_from_fields(_dump(usage))  # DeepSeek-style cache fields
    if (
        (details is not None and (details.audio_tokens or _extra(details, "cache_write_tokens")))
        or (out_details is not None and out_details.audio_tokens)
        or _extra(usage, "cost") is not None
    ):
        return openai_chat.usage_from_fields(_dump(usage))  # cache writes, audio, OpenRouter's own cost
    return Usage(
        input_tokens=prompt - cached, cache_read_tokens=cached, output_tokens=output, reasoning_tokens=reasoning
    )


def _extra(obj: Any, name: str) -> Any:
    """`getattr(obj, name, None)` for a field the SDK's model does not declare, read from pydantic's extras: a
    missed attribute goes through pydantic's `__getattr__`, which raises and catches (microseconds per call)."""
    extra = getattr(obj, "__pydantic_extra__", None)
    if isinstance(extra, dict):
        return extra.get(name)
    return getattr(obj, name, None)


def output_of(fmt: WireFormat, response: Any) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """The answer's text and its tool calls (name, arguments), for the loop checks."""
    if fmt is WireFormat.OPENAI_CHAT:
        choices = getattr(response, "choices", None) or ()
        if not choices:
            return "", ()
        message = choices[0].message
        calls = tuple(
            (c.function.name, c.function.arguments) for c in (message.tool_calls or ()) if getattr(c, "function", None)
        )
        return message.content or "", calls
    if fmt is WireFormat.OPENAI_RESPONSES:
        calls = tuple((i.name, i.arguments) for i in response.output or () if i.type == "function_call")
        return getattr(response, "output_text", "") or "", calls
    texts, calls_list = [], []
    for block in response.content or ():
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use":
            calls_list.append((block.name, block.input))
    return "".join(texts), tuple(calls_list)


# --- partial answers -----------------------------------------------------------------------------------------


def _types(fmt: WireFormat, sdk: str) -> tuple[Any, Any]:
    """(body type, stream event type) of the SDK for this format."""
    if fmt is WireFormat.OPENAI_CHAT:
        from openai.types.chat import ChatCompletion, ChatCompletionChunk

        return ChatCompletion, ChatCompletionChunk
    if fmt is WireFormat.OPENAI_RESPONSES:
        from openai.types.responses import Response, ResponseStreamEvent

        return Response, ResponseStreamEvent
    from anthropic.types import Message, RawMessageStreamEvent

    return Message, RawMessageStreamEvent


def partial_object(fmt: WireFormat, *, model: str, text: str, **marker: Any) -> Any:
    """The SDK's own response object for a partial answer; `marker` (code, message, retry_after) is readable
    as `obj.model_extra["fiscus"]`."""
    body_type, _ = _types(fmt, "")
    return body_type.model_validate(partial_body(str(fmt), model=model, text=text, **marker))


def partial_stream(
    fmt: WireFormat, client: Any, *, model: str, text: str, include_usage: bool, is_async: bool, **marker: Any
) -> Any:
    """The SDK's own `Stream` / `AsyncStream` yielding the partial answer's events."""
    _, event_type = _types(fmt, "")
    frames = b"".join(partial_events(str(fmt), model=model, text=text, include_usage=include_usage, **marker))
    module = importlib.import_module("openai._streaming" if fmt is not WireFormat.ANTHROPIC else "anthropic._streaming")
    http = getattr(module, "httpx2", None) or getattr(module, "httpx", None) or importlib.import_module("httpx")
    request = http.Request("POST", "http://fiscus.invalid/partial")
    response = http.Response(200, headers={"content-type": "text/event-stream"}, content=frames, request=request)
    stream_type = module.AsyncStream if is_async else module.Stream
    return stream_type(cast_to=event_type, response=response, client=client)


def events_as_json(frames: list[bytes]) -> list[dict[str, Any]]:
    """Decoded `data:` payloads of SSE frames (for tests and logs)."""
    out = []
    for frame in frames:
        for line in frame.decode().splitlines():
            if line.startswith("data: ") and line != "data: [DONE]":
                out.append(json.loads(line[6:]))
    return out
