"""`/metrics` on a listen address of its own (`gateway.metrics_listen`), without a token: for a Prometheus that
reaches the gateway over a private interface while the main port faces clients.

A few lines of HTTP/1.1 on asyncio's streams rather than a second uvicorn: uvicorn's server takes over the
process's signal handlers, which belong to the main server. Each request gets one answer and the connection is
closed; a request head that is slow or large is dropped. Every worker binds the address with SO_REUSEPORT, so a
scrape reaches one of them (as a scrape of the main port does).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from fiscus.errors import ConfigError
from fiscus.gateway.metrics import CONTENT_TYPE

log = logging.getLogger("fiscus.gateway")

HEAD_TIMEOUT_S = 5.0
MAX_HEAD_BYTES = 8192


def parse_listen(address: str) -> tuple[str, int]:
    """`host:port` (IPv6 as `[::1]:9464`) as (host, port); ConfigError naming the setting when malformed."""
    host, sep, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"gateway.metrics_listen: {address!r} is not host:port (e.g. 127.0.0.1:9464)")
    return host, int(port)


def _answer(status: str, body: bytes, media: str = "text/plain; charset=utf-8") -> bytes:
    head = f"HTTP/1.1 {status}\r\ncontent-type: {media}\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    return head.encode("latin-1") + body


async def start_metrics_listener(address: str, render: Callable[[], bytes]) -> asyncio.Server:
    """Serve `GET /metrics` (the text `render()` gives, made on a worker thread: it may read the budget store) at
    `address` until the returned server is closed."""
    host, port = parse_listen(address)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(HEAD_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            method, _, rest = head.partition(b" ")
            path = rest.partition(b" ")[0].partition(b"?")[0]
            if method == b"GET" and path == b"/metrics":
                writer.write(_answer("200 OK", await asyncio.to_thread(render), CONTENT_TYPE))
            elif path == b"/metrics":
                writer.write(_answer("405 Method Not Allowed", b"only GET\n"))
            else:
                writer.write(_answer("404 Not Found", b"only /metrics is served here\n"))
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # a slow, cut or oversized request head gets no answer
        except Exception:
            log.exception("metrics listener failed to answer")
        finally:
            writer.close()

    try:
        return await asyncio.start_server(
            handle, host, port, limit=MAX_HEAD_BYTES, reuse_port=hasattr(socket, "SO_REUSEPORT")
        )
    except OSError as exc:
        raise ConfigError(f"gateway.metrics_listen: cannot listen on {address} ({exc.strerror})") from None
