"""Server-sent events: frame encoding, token pacing and the mid-stream connection drop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import StreamingResponse

DONE = b"data: [DONE]\n\n"
_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def data(payload: Any) -> bytes:
    """An unnamed event, as OpenAI chat completions and Gemini send them."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def event(name: str, payload: Any) -> bytes:
    """A named event whose data repeats the name in `type`, as Anthropic and OpenAI Responses send them."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class StreamCut(Exception):  # named for the fault it causes
    """Raised inside a stream to make the server drop the connection, as a provider outage would."""


class _HideStreamCuts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, StreamCut) and not isinstance(getattr(exc, "__cause__", None), StreamCut)


def quiet_stream_cuts() -> None:
    """Keep uvicorn from logging a deliberate cut as an application crash (idempotent)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideStreamCuts) for f in logger.filters):
        logger.addFilter(_HideStreamCuts())


class Pacer:
    """Waits between deltas in proportion to the tokens they carry; free when latency is zero."""

    __slots__ = ("_per_token_s",)

    def __init__(self, token_latency_ms: float) -> None:
        self._per_token_s = max(0.0, token_latency_ms) / 1000

    async def tokens(self, count: int) -> None:
        if self._per_token_s and count:
            await asyncio.sleep(self._per_token_s * count)


def stream(frames: AsyncIterator[bytes], headers: dict[str, str] | None = None) -> StreamingResponse:
    return StreamingResponse(frames, media_type="text/event-stream", headers={**_HEADERS, **(headers or {})})
