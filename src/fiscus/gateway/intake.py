"""Reading a client's request body within bounds: its size (413 as soon as it passes the limit, never read whole
first), its time (408 when it has not arrived whole within `timeout_s`), and how many requests of one worker may
be slow to send theirs at once (past `max_slow`, a request still sending its body after `slow_after_s` is
refused at once). A client that trickles a body, or never finishes it, so holds a connection for a bounded time,
and a crowd of them cannot hold every connection a worker can serve.

Each refusal closes the connection (`connection: close`): the rest of a body nobody will read must not keep it.
"""

from __future__ import annotations

import asyncio

from starlette.types import Receive

from fiscus.gateway.protocol import BadRequest

SLOW_AFTER_S = 1.0
_CLOSE = {"connection": "close"}


def _refusal(message: str, status: int, code: str) -> BadRequest:
    refusal = BadRequest(message, status=status, code=code)
    refusal.headers.update(_CLOSE)
    return refusal


class BodyIntake:
    """The request bodies of one app: size and time limits, and the count of requests slow to send theirs."""

    def __init__(self, *, limit: int, timeout_s: float, max_slow: int, slow_after_s: float = SLOW_AFTER_S) -> None:
        self.limit = limit
        self.timeout_s = timeout_s
        self.max_slow = max_slow
        self.slow_after_s = min(slow_after_s, timeout_s)
        self.slow = 0  # requests still sending their body after `slow_after_s`

    async def read(self, receive: Receive, content_length: str | None) -> bytes:
        """The whole body, or `BadRequest` (400 on a bad content-length or a client gone, 408, 413)."""
        if content_length is not None:
            try:
                declared = int(content_length)
            except ValueError:
                raise BadRequest("invalid content-length header") from None
            if declared > self.limit:
                raise _refusal(
                    f"request body of {declared} bytes exceeds the limit of {self.limit} bytes",
                    413,
                    "request_too_large",
                )
        parts: list[bytes] = []
        loop = asyncio.get_running_loop()
        started = loop.time()
        # One timer for the usual body, which arrives at once; only a slow one is counted and timed again.
        try:
            async with asyncio.timeout_at(started + self.slow_after_s):
                return await self._collect(receive, parts)
        except TimeoutError:
            pass
        if self.slow >= self.max_slow:
            raise _refusal(
                f"too many requests are slow to send their body (at most {self.max_slow}); send the body at once",
                408,
                "request_timeout",
            )
        self.slow += 1
        try:
            async with asyncio.timeout_at(started + self.timeout_s):
                return await self._collect(receive, parts)
        except TimeoutError:
            raise _refusal(f"request body not received within {self.timeout_s:g} s", 408, "request_timeout") from None
        finally:
            self.slow -= 1

    async def _collect(self, receive: Receive, parts: list[bytes]) -> bytes:
        # `parts` carries what arrived across a timer's end: a cancelled `receive` has consumed nothing.
        size = sum(len(part) for part in parts)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise BadRequest("client disconnected while sending the body", status=400)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                raise _refusal(f"request body exceeds the limit of {self.limit} bytes", 413, "request_too_large")
            parts.append(chunk)
            if not message.get("more_body", False):
                return parts[0] if len(parts) == 1 else b"".join(parts)
