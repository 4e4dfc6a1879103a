"""Relaying a streamed answer: bytes go to the client as they arrive, and the call is settled exactly once —
at the end of the stream, or when the client goes away mid-stream, or when the upstream breaks.

The cost is known only after the last upstream byte, when the headers are long gone, so it is sent as a
final SSE comment line, `: x-fiscus-cost-usd=<decimal>` — SSE clients ignore comments; tools can read it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

import anyio
import orjson
from starlette.types import Receive, Scope, Send


def cost_trailer(cost: str) -> bytes:
    return b": x-fiscus-cost-usd=" + cost.encode() + b"\n\n"


class UsageChunkFilter:
    """Drops OpenAI chat's usage-only final chunk (`choices: []` plus `usage`) from a stream whose client did
    not ask for it — the gateway asked for it on the client's behalf to count the call exactly."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = b""

    def __call__(self, chunk: bytes) -> bytes:
        if not self._pending and chunk.endswith(b"\n\n") and not _usage_object(chunk):
            return chunk  # whole events, none usage-only: the usual chunk passes as it is
        data = self._pending + chunk
        cut = data.rfind(b"\n\n")
        if cut < 0:
            self._pending = data
            return b""
        self._pending = data[cut + 2 :]
        complete = data[: cut + 2]
        found = _USAGE_OBJECT.search(complete)
        if found is None:  # most chunks: no usage, or `"usage":null` beside the choices
            return complete
        # Events before the one holding the first usage object pass as they are; only the rest is looked at.
        start = complete.rfind(b"\n\n", 0, found.start())
        start = 0 if start < 0 else start + 2
        rest = complete[start:-2].split(b"\n\n")
        return complete[:start] + b"".join(event + b"\n\n" for event in rest if not _usage_only(event))

    def flush(self) -> bytes:
        rest, self._pending = self._pending, b""
        return b"" if _usage_only(rest) else rest


# A `"usage"` key holding an object (only then can an event be usage-only). One regex scan over the bytes: with
# `include_usage` every chunk carries `"usage":null`, and a chunk may hold many events.
_USAGE_OBJECT = re.compile(rb'"usage"[ \t:]{0,16}\{')


def _usage_object(data: bytes) -> bool:
    return _USAGE_OBJECT.search(data) is not None


def _usage_only(event: bytes) -> bool:
    if not _usage_object(event):
        return False
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            try:
                payload = orjson.loads(line[5:])
            except orjson.JSONDecodeError:
                return False
            return isinstance(payload, dict) and payload.get("choices") == [] and bool(payload.get("usage"))
    return False


class StreamRelay:
    """An ASGI response over an upstream byte stream.

    `read` returns the next upstream bytes (b"" at the end); `on_chunk` sees every upstream chunk and returns
    the bytes to send on (it feeds the usage tracker); `on_end(completed)` settles the call and returns the
    closing bytes (the cost trailer) for a completed stream; `close` releases the upstream connection. Both run
    however the stream ends.
    """

    def __init__(
        self,
        read: Callable[[], Awaitable[bytes]],
        *,
        status: int,
        headers: list[tuple[bytes, bytes]],
        on_chunk: Callable[[bytes], bytes],
        on_end: Callable[[bool, str | None], Awaitable[bytes]],
        close: Callable[[], Awaitable[None]],
    ) -> None:
        self._read = read
        self._status = status
        self._headers = headers
        self._on_chunk = on_chunk
        self._on_end = on_end
        self._close = close
        self.completed = False
        self.disconnected = False
        self.error: str | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self._status, "headers": self._headers})
        # One plain task watches for the client going away and cancels the pump; cheaper per stream than a
        # task group with its cancel scopes.
        pump = asyncio.current_task()
        assert pump is not None

        pumping = True

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.disconnected = True
            if pumping:  # never cancel the settling that follows the pump
                pump.cancel()

        watcher = asyncio.get_running_loop().create_task(watch())
        try:
            try:
                await self._pump(send)
                pumping = False
            except asyncio.CancelledError:
                pumping = False
                if not self.disconnected:
                    raise
                pump.uncancel()
            except Exception as exc:  # upstream broke mid-stream: the client sees the stream end
                pumping = False
                self.error = f"upstream stream failed: {type(exc).__name__}: {exc}"
            finally:
                pumping = False
                watcher.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    finished = self.completed and not self.disconnected
                    closing = await self._on_end(finished, self.error or self._why_unfinished())
                finally:
                    await self._close()
                if not self.disconnected:
                    await send({"type": "http.response.body", "body": closing, "more_body": False})

    def _why_unfinished(self) -> str | None:
        if self.disconnected and not self.completed:
            return "client disconnected mid-stream"
        return None

    async def _pump(self, send: Send) -> None:
        read, on_chunk = self._read, self._on_chunk
        while chunk := await read():
            out = on_chunk(chunk)
            if out:
                await send({"type": "http.response.body", "body": out, "more_body": True})
        self.completed = True
