"""What both directions share: the error type, JSON and SSE framing, error bodies and usage in either format."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from fiscus.providers.messages import ProviderError
from fiscus.usage import anthropic as anthropic_usage
from fiscus.usage import openai_chat as openai_usage
from fiscus.usage.stream import child

Json = dict[str, Any]

_MAX_ERROR_TEXT = 2000  # a junk error body (an HTML page from a proxy) is kept, but not all of it


class Untranslatable(ProviderError):
    """The request uses something the other wire format cannot carry; the message names it."""


def load_object(body: bytes, what: str) -> Json:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Untranslatable(f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise Untranslatable(f"{what} is not a JSON object")
    return value


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def sse_data(value: Any) -> bytes:
    """One OpenAI-style event: a `data:` line only."""
    return b"data: " + orjson.dumps(value) + b"\n\n"


def sse_event(name: str, value: Any) -> bytes:
    """One Anthropic-style event: named, its JSON carrying the same `type`."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(value) + b"\n\n"


def openai_tool_call(block: Mapping[str, Any]) -> Json:
    """An Anthropic `tool_use` block → a Chat Completions tool call (`input` object → `arguments` string)."""
    function = {"name": block.get("name"), "arguments": orjson.dumps(block.get("input") or {}).decode()}
    return {"id": block.get("id"), "type": "function", "function": function}


def sequence(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Untranslatable(f"{what} is not a list")
    return value


def as_object(value: Any, what: str) -> Json:
    if not isinstance(value, dict):
        raise Untranslatable(f"{what} is not an object")
    return value


# Usage. Both conversions go through fiscus's own readers, so the translated answer reads back as the same
# `Usage` the provider reported (cache writes aside: see `openai_usage_from_anthropic`).


def openai_usage_from_anthropic(usage: Mapping[str, Any]) -> Json:
    """Anthropic `usage` → Chat Completions `usage`: prompt_tokens counts uncached input, cache reads and cache
    writes; cached_tokens is the cache reads; completion_tokens is output_tokens, thinking included.

    Chat Completions cannot express cache writes. A request translated from Chat Completions carries no
    `cache_control`, so Anthropic writes no cache and this never arises in practice; if an answer nevertheless
    reports `cache_creation_input_tokens`, they are folded into prompt_tokens (read back as uncached input, so
    no token goes uncounted) and also kept in `cache_creation_input_tokens`, a field OpenAI's SDK tolerates."""
    read = anthropic_usage.usage_from_fields(usage)
    prompt = read.total_input_tokens
    out: Json = {
        "prompt_tokens": prompt,
        "completion_tokens": read.output_tokens,
        "total_tokens": prompt + read.output_tokens,
        "prompt_tokens_details": {"cached_tokens": read.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": read.reasoning_tokens},
    }
    if read.cache_write_tokens:
        out["cache_creation_input_tokens"] = read.cache_write_tokens
    return out


def anthropic_usage_from_openai(usage: Mapping[str, Any]) -> Json:
    """Chat Completions `usage` → Anthropic `usage`: input_tokens = prompt_tokens − cached_tokens,
    cache_read_input_tokens = cached_tokens, output_tokens = completion_tokens (reasoning included)."""
    read = openai_usage.usage_from_fields(usage)
    out: Json = {
        "input_tokens": read.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": read.cache_read_tokens,
        "output_tokens": read.output_tokens,
    }
    if read.reasoning_tokens:
        out["output_tokens_details"] = {"thinking_tokens": read.reasoning_tokens}
    return out


# Errors. Both formats put the message in `error.message`; the type is chosen by status, the provider's own
# type kept in OpenAI's `code` (Anthropic's format has no room for it).

_ANTHROPIC_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_OPENAI_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}
# Mid-stream errors carry no status: map the provider's type instead.
_OPENAI_TYPE_OF_ANTHROPIC = {
    "invalid_request_error": "invalid_request_error",
    "authentication_error": "authentication_error",
    "permission_error": "permission_error",
    "not_found_error": "not_found_error",
    "request_too_large": "invalid_request_error",
    "rate_limit_error": "rate_limit_error",
}
_ANTHROPIC_TYPE_OF_OPENAI = {
    "invalid_request_error": "invalid_request_error",
    "authentication_error": "authentication_error",
    "permission_error": "permission_error",
    "not_found_error": "not_found_error",
    "rate_limit_error": "rate_limit_error",
    "insufficient_quota": "rate_limit_error",
    "requests": "rate_limit_error",
    "tokens": "rate_limit_error",
}


def anthropic_error_type(status: int) -> str:
    if status in _ANTHROPIC_TYPE_BY_STATUS:
        return _ANTHROPIC_TYPE_BY_STATUS[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def openai_error_type(status: int) -> str:
    if status in _OPENAI_TYPE_BY_STATUS:
        return _OPENAI_TYPE_BY_STATUS[status]
    return "server_error" if status >= 500 else "invalid_request_error"


def read_error(status: int, body: bytes) -> tuple[str, str | None]:
    """The message and the provider's own error type or code from any error body; junk is kept as text."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        error = value.get("error")
        if isinstance(error, dict):
            message = error.get("message")
            kind = error.get("code") or error.get("type")
            if isinstance(message, str) and message:
                return message, kind if isinstance(kind, str) else None
        elif isinstance(error, str) and error:
            return error, None
        for key in ("message", "detail"):
            if isinstance(value.get(key), str) and value[key]:
                return value[key], None
    text = body.decode("utf-8", errors="replace").strip()
    if len(text) > _MAX_ERROR_TEXT:
        text = text[:_MAX_ERROR_TEXT] + "…"
    return text or f"HTTP {status} from the provider", None


def openai_error(message: str, kind: str, code: str | None) -> Json:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def anthropic_error(message: str, kind: str) -> Json:
    return {"type": "error", "error": {"type": kind, "message": message}}


def openai_stream_error(event: Mapping[str, Any]) -> Json:
    """An Anthropic `error` event's payload → the object OpenAI sends as a `data:` line mid-stream."""
    error = child(event, "error")
    kind = error.get("type") if isinstance(error.get("type"), str) else "api_error"
    message = error.get("message") if isinstance(error.get("message"), str) else kind
    return openai_error(message, _OPENAI_TYPE_OF_ANTHROPIC.get(kind, "server_error"), kind)


def anthropic_stream_error(event: Mapping[str, Any]) -> Json:
    """A Chat Completions mid-stream `{"error": ...}` → an Anthropic `error` event."""
    error = event.get("error")
    if not isinstance(error, Mapping):
        return anthropic_error(str(error or "error"), "api_error")
    kind = error.get("type") if isinstance(error.get("type"), str) else None
    message = error.get("message") if isinstance(error.get("message"), str) else kind or "error"
    return anthropic_error(message, _ANTHROPIC_TYPE_OF_OPENAI.get(kind or "", "api_error"))
