"""A partial answer as a real HTTP exchange of the official SDK, in memory.

`with_raw_response` and `with_streaming_response` hand back the SDK's own response objects (headers, `parse()`,
`iter_lines()`…). For a call that reaches no model, the same method is called on a copy of the client whose
transport answers in memory with what the gateway would send: the partial body (or its SSE events) and the
`x-fiscus-partial: <code>` header. So the caller gets the SDK's own raw response, built by the SDK itself,
and `parse()` gives the partial object. Nothing leaves the process.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import orjson

from fiscus.shaping.partial import PARTIAL_HEADER, partial_body, partial_events
from fiscus.usage.wire import WireFormat

_SDK_PATHS = {  # where each format's method lives on a client
    WireFormat.OPENAI_CHAT: ("chat", "completions"),
    WireFormat.OPENAI_RESPONSES: ("responses",),
    WireFormat.ANTHROPIC: ("messages",),
}


def _http(client: Any) -> Any:
    """The HTTP library the client's SDK is built on (httpx, or its successor in newer SDKs)."""
    root = type(client).__module__.split(".")[0]
    base = importlib.import_module(f"{root}._base_client")
    return getattr(base, "httpx2", None) or getattr(base, "httpx", None) or importlib.import_module("httpx")


def partial_payload(
    fmt: WireFormat,
    *,
    model: str,
    text: str,
    code: str,
    message: str,
    retry_after: int | None,
    stream: bool,
    include_usage: bool = False,
) -> tuple[bytes, str]:
    """(body bytes, content type) of the gateway's partial answer for this format."""
    if stream:
        frames = partial_events(
            str(fmt),
            model=model,
            text=text,
            include_usage=include_usage,
            code=code,
            message=message,
            retry_after=retry_after,
        )
        return b"".join(frames), "text/event-stream"
    body = partial_body(str(fmt), model=model, text=text, code=code, message=message, retry_after=retry_after)
    return orjson.dumps(body), "application/json"


def in_memory_resource(client: Any, fmt: WireFormat, content: bytes, headers: dict[str, str], is_async: bool) -> Any:
    """The format's resource (e.g. `client.chat.completions`) on a copy of `client` answered from memory."""
    http = _http(client)

    def answer(request: Any) -> Any:
        return http.Response(200, headers=headers, content=content, request=request)

    if is_async:

        async def aanswer(request: Any) -> Any:
            return answer(request)

        transport: Any = http.MockTransport(aanswer)
        http_client: Any = http.AsyncClient(transport=transport)
    else:
        http_client = http.Client(transport=http.MockTransport(answer))
    resource = client.with_options(http_client=http_client, max_retries=0)
    for name in _SDK_PATHS[fmt]:
        resource = getattr(resource, name)
    return resource


def partial_exchange(
    client: Any,
    fmt: WireFormat,
    *,
    kind: str,
    kwargs: dict[str, Any],
    model: str,
    text: str,
    code: str,
    message: str,
    retry_after: int | None,
    is_async: bool,
    extra_headers: dict[str, str] | None = None,
) -> Any:
    """Call `<resource>.<kind>.create(**kwargs)` (kind: `with_raw_response` or `with_streaming_response`) on an
    in-memory copy of `client` that answers with the partial answer; returns what the SDK returns (awaitable for
    an async raw call, a context manager for a streaming one)."""
    stream = bool(kwargs.get("stream"))
    wants_usage = bool((kwargs.get("stream_options") or {}).get("include_usage"))
    content, content_type = partial_payload(
        fmt,
        model=model,
        text=text,
        code=code,
        message=message,
        retry_after=retry_after,
        stream=stream,
        include_usage=wants_usage,
    )
    headers = {"content-type": content_type, PARTIAL_HEADER: code, **(extra_headers or {})}
    resource = in_memory_resource(client, fmt, content, headers, is_async)
    create: Callable[..., Any] = getattr(resource, kind).create
    return create(**kwargs)
