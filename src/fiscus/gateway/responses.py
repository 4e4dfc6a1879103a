"""A whole HTTP answer sent straight over ASGI: two `send` calls, headers as bytes, nothing rebuilt per call.

The proxied routes answer with this instead of Starlette's `Response`, which re-encodes and re-checks its
headers on every call; the constant headers here are encoded once, at import.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.types import Receive, Scope, Send

JSON = "application/json"
SSE = "text/event-stream"

_CONTENT_TYPES: dict[str, bytes] = {
    JSON: JSON.encode(),
    SSE: b"text/event-stream; charset=utf-8",
}
_CONTENT_TYPE = b"content-type"
_CONTENT_LENGTH = b"content-length"


def content_type(media: str) -> bytes:
    """`media` as a header value; a text type without a charset gets `utf-8`, as Starlette would set."""
    cached = _CONTENT_TYPES.get(media)
    if cached is not None:
        return cached
    value = media if not media.startswith("text/") or "charset" in media else f"{media}; charset=utf-8"
    if len(_CONTENT_TYPES) < 64:  # upstream content types are few; never let a provider grow this
        _CONTENT_TYPES[media] = value.encode("latin-1")
    return value.encode("latin-1")


class RawResponse:
    """A complete answer: status, `headers` (lower-case names) and body, sent in one start and one body message.
    `after`, when set, is awaited once the answer is sent (or sending failed): work the client need not wait for."""

    __slots__ = ("after", "body", "headers", "status_code")

    def __init__(self, body: bytes, status: int, headers: Mapping[str, str] | None = None, media: str = JSON) -> None:
        self.body = body
        self.status_code = status
        raw = [(_CONTENT_TYPE, content_type(media)), (_CONTENT_LENGTH, str(len(body)).encode())]
        if headers:
            raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self.headers = raw
        self.after: Callable[[], Awaitable[None]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.headers})
            await send({"type": "http.response.body", "body": self.body})
        finally:
            if self.after is not None:
                await self.after()
