"""The HTTP client under every provider call: HTTP/1.1 on asyncio's protocol layer with httptools' parser (the one
uvicorn uses), a keep-alive pool per origin, verified TLS with an optional CA bundle and HTTP(S) proxies
(`fiscus.providers.dial`), gzip/deflate, per-call timeouts.

Chosen by measurement (bench/upstream_client.py: CPU per call of the calling process against the emulator on
loopback, 2 cores, uvloop): aiohttp's ClientSession spent 204-250 µs per JSON call and 549-595 µs per 28-event
stream, the largest single part of the gateway's own CPU per request; this client 100-123 and 371-465 (an
earlier, quieter run: aiohttp 233-252 and 493-528, this client 66 and 319-323). A provider call needs only a
small part of what aiohttp does per request (cookie jars, tracing hooks, a multidict per header set, redirects,
a payload registry lookup per body). aiohttp had itself replaced httpx (1.5-3.8x the throughput).

Only what a provider call needs: POST with a content-length body, answers framed by content-length, chunked
encoding or the connection's end, streamed as they arrive; no redirects or cookies (a gateway must not carry one
caller's provider cookies into another's request).
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import httptools

from fiscus.providers.dial import DialError, ProxySettings, dial
from fiscus.providers.request_head import request_head, target_of

# Framing headers describe the bytes on the upstream connection, not the decoded body we hand on.
_FRAMING = frozenset({"content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive"})
# A reader slower than its provider: stop reading the socket past this many buffered bytes (TCP pushes back).
_HIGH_WATER = 256 * 1024


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect_s: float
    read_s: float  # longest silence between two reads, so long streams are fine while tokens keep coming


class TransportError(Exception):
    """The provider's answer could not be had: raised as one of the subclasses."""


class ConnectFailed(TransportError):
    """No HTTP answer was received; safe to retry (the provider never saw a complete request)."""


class ReadTimedOut(TransportError):
    """The provider went silent for longer than the read timeout."""


class BrokenAnswer(TransportError):
    """The answer started but the connection closed, or sent something that is not HTTP, before its end."""


def answer_headers(raw: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in raw.items() if k.lower() not in _FRAMING}


# scheme, host, port and the CA bundle that verifies it: one pool of connections each
_Origin = tuple[str, str, int, str | None]


class _Connection(asyncio.Protocol):
    """One keep-alive connection; it reads one answer at a time. httptools calls the `on_*` methods."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.lost: str | None = None  # why the connection can no longer be used
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.complete = False
        self.reusable = False
        self.got_bytes = False
        self._framed = False  # content-length or chunked: the end is known without the connection closing
        self._body: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None

    # --- asyncio.Protocol -------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        if self.complete:  # bytes after the answer: nothing was asked, so the connection is not trusted
            self._close("unexpected bytes after the answer")
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._close(f"invalid HTTP answer ({exc})")

    def connection_lost(self, exc: Exception | None) -> None:
        if self.headers_done and not self.complete and not self._framed:
            self.complete = True  # neither length nor chunks: the body ends with the connection
        self.lost = self.lost or (f"connection lost ({exc})" if exc else "connection closed by the provider")
        self._wake()

    # --- httptools callbacks ----------------------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))
        lowered = name.lower()
        if lowered == b"content-length" or (lowered == b"transfer-encoding" and b"chunked" in value.lower()):
            self._framed = True

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        if self.status < 200:  # an interim answer (e.g. 100 Continue): the real one follows
            self.raw_headers = []
            self._framed = False
            return
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if not self.headers_done:
            return
        self.complete = True
        self.reusable = self._parser.should_keep_alive()
        self._wake()

    # --- used by the pool and StreamBody ----------------------------------------------------------------------
    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, timeout_s: float) -> None:
        """Until the next parser event or the connection's end; ReadTimedOut after `timeout_s` of silence."""
        waiter = self._waiter = self._loop.create_future()
        timer = self._loop.call_later(timeout_s, _time_out, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def take(self) -> bytes:
        """The body bytes received so far (b"" if none)."""
        body = self._body
        if not body:
            return b""
        data = body.popleft() if len(body) == 1 else b"".join(body)
        body.clear()
        self._buffered = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    @property
    def usable(self) -> bool:
        return self.lost is None and self.transport is not None and not self.transport.is_closing()

    def start(self, head: bytes, body: bytes) -> None:
        self._reset()
        assert self.transport is not None
        if len(body) < 65536:  # one write (one segment) for the usual prompt; a large body is not copied
            self.transport.write(head + body)
        else:
            self.transport.writelines((head, body))

    def _close(self, why: str) -> None:
        self.lost = self.lost or why
        if self.transport is not None:
            self.transport.close()
        self._wake()

    def close(self) -> None:
        self._close("closed")


def _time_out(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class StreamBody:
    """An open answer: status and headers are known; the body is read chunk by chunk, as it arrives."""

    def __init__(self, connection: _Connection, pool: _Pool, origin: _Origin, read_s: float) -> None:
        self._connection = connection
        self._pool = pool
        self._origin = origin
        self._read_s = read_s
        self._released = False
        self.status = connection.status
        headers: dict[str, str] = {}
        encoding = b""
        for name, value in connection.raw_headers:
            key = name.decode("latin-1").lower()
            if key == "content-encoding":
                encoding = value.strip().lower()
            if key not in _FRAMING:
                # Repeated names are joined, as a multidict flattened to one value would show them.
                text = value.decode("latin-1")
                headers[key] = f"{headers[key]}, {text}" if key in headers else text
        self.headers = headers
        self._decoder = _decoder(encoding)

    async def read_chunk(self) -> bytes:
        """The next bytes of the body as soon as any have arrived; b"" at its end."""
        connection = self._connection
        while True:
            data = connection.take()
            if data:
                if self._decoder is None:
                    return data
                data = self._decode(data)
                if data:
                    return data
                continue
            if connection.complete:
                return self._flush()
            if connection.lost is not None:
                raise BrokenAnswer(connection.lost)
            try:
                await connection.wait(self._read_s)
            except TimeoutError:
                raise ReadTimedOut(f"no data for {self._read_s} s") from None

    async def read(self) -> bytes:
        parts = []
        while chunk := await self.read_chunk():
            parts.append(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _decode(self, data: bytes) -> bytes:
        assert self._decoder is not None
        try:
            return self._decoder.decompress(data)
        except zlib.error as exc:
            raise BrokenAnswer(f"cannot decode the body ({exc})") from None

    def _flush(self) -> bytes:
        if self._decoder is None:
            return b""
        decoder, self._decoder = self._decoder, None
        return decoder.flush()

    def close(self) -> None:
        """Back to the pool if the body was read to the end; else drop the connection (it cannot be reused
        mid-body)."""
        if self._released:
            return
        self._released = True
        connection = self._connection
        if connection.complete and connection.reusable and not connection.take() and connection.usable:
            self._pool.release(self._origin, connection)
        else:
            connection.close()
            self._pool.discard(self._origin)


def _decoder(encoding: bytes) -> zlib._Decompress | None:  # type: ignore[name-defined]
    if encoding in (b"", b"identity"):
        return None
    if encoding in (b"gzip", b"x-gzip", b"deflate"):
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
    raise BrokenAnswer(f"unsupported content-encoding {encoding.decode('latin-1')!r}")


class _Pool:
    """Idle connections per origin (newest first), and the limits on open ones."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, total: int, per_host: int, keepalive_s: float, proxies: ProxySettings
    ) -> None:
        self.loop = loop
        self._total, self._per_host, self._keepalive_s = total, per_host, keepalive_s
        self._proxies = proxies
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._open: dict[_Origin, int] = {}
        self._open_total = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.closed = False

    async def acquire(self, origin: _Origin, connect_s: float) -> tuple[_Connection, bool]:
        """A connection to `origin` and whether it was reused."""
        while True:
            idle = self._idle.get(origin)
            if idle:
                expired = time.monotonic() - self._keepalive_s
                while idle:
                    connection = idle.pop()
                    if connection.usable and connection.idle_since > expired:
                        return connection, True
                    connection.close()
                    self.discard(origin)
            if self._open_total >= self._total:
                self._evict_idle()  # an idle connection to another origin gives way
            if self._open_total < self._total and self._open.get(origin, 0) < self._per_host:
                break
            waiter = self.loop.create_future()
            self._waiters.append(waiter)
            await waiter  # a connection was released or closed: look again
        self._open[origin] = self._open.get(origin, 0) + 1
        self._open_total += 1
        try:
            return await self._connect(origin, connect_s), False
        except BaseException:
            self.discard(origin)
            raise

    def _evict_idle(self) -> None:
        for origin, idle in self._idle.items():
            if idle:
                idle.pop(0).close()  # the oldest
                self.discard(origin)
                return

    async def _connect(self, origin: _Origin, connect_s: float) -> _Connection:
        scheme, host, port, ca_bundle = origin
        connection = _Connection(self.loop)
        proxy = self._proxies.for_origin(scheme, host, port)
        try:
            async with asyncio.timeout(connect_s):
                await dial(self.loop, connection, (scheme, host, port), proxy=proxy, ca_bundle=ca_bundle)
        except TimeoutError:
            connection.close()
            via = f" through the proxy {proxy.address}" if proxy is not None else ""
            raise ConnectFailed(f"connect timeout after {connect_s} s{via}") from None
        except DialError as exc:
            raise ConnectFailed(str(exc)) from None
        return connection

    def release(self, origin: _Origin, connection: _Connection) -> None:
        if self.closed:
            connection.close()
            self.discard(origin)
            return
        connection.idle_since = time.monotonic()
        self._idle.setdefault(origin, []).append(connection)
        self._wake_waiters()

    def discard(self, origin: _Origin) -> None:
        """One connection to `origin` is gone: a waiter may open another."""
        self._open[origin] -= 1
        self._open_total -= 1
        self._wake_waiters()

    def _wake_waiters(self) -> None:
        # All of them: each looks again for its own origin (waiters exist only while a limit is reached).
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def close(self) -> None:
        self.closed = True
        for origin, idle in self._idle.items():
            for connection in idle:
                connection.close()
                self._open[origin] -= 1
                self._open_total -= 1
        self._idle.clear()


class Transport:
    """One connection pool for all providers (per-host limits keep one slow provider from starving others).
    Bound to the event loop it is first used in (a new loop gets a new pool); `aclose()` when done. `proxies`
    (default: none) say which origins are reached through a proxy (`ProxySettings.from_env`)."""

    def __init__(
        self,
        *,
        max_connections: int = 512,
        max_per_host: int = 256,
        keepalive_s: float = 60.0,
        proxies: ProxySettings | None = None,
    ) -> None:
        self._limits = (max_connections, max_per_host, keepalive_s)
        self._proxies = proxies or ProxySettings()
        self._pool: _Pool | None = None

    def _current(self) -> _Pool:
        loop = asyncio.get_running_loop()
        if self._pool is None or self._pool.loop is not loop or self._pool.closed:
            self._pool = _Pool(loop, *self._limits, self._proxies)
        return self._pool

    async def open(
        self,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        timeouts: Timeouts,
        *,
        ca_bundle: str | None = None,
        method: str = "POST",
    ) -> StreamBody:
        """Send (a POST unless `method` says otherwise) and return once status and headers have arrived; raise
        ConnectFailed if none did. An https:// provider's certificate is verified against `ca_bundle` (a PEM file)
        when given, else the system's CAs."""
        try:
            target = target_of(url, method)
        except ValueError as exc:
            raise ConnectFailed(str(exc)) from None
        scheme, host, port = target.origin
        proxy = self._proxies.for_origin(scheme, host, port) if scheme == "http" else None
        if proxy is None:
            head = request_head(target.head, headers, len(body))
        else:  # the proxy itself is asked, in absolute form
            if proxy.authorization:
                headers = {**headers, "proxy-authorization": proxy.authorization}
            head = request_head(target.proxied_head, headers, len(body))
        origin = (scheme, host, port, ca_bundle if scheme == "https" else None)
        pool = self._current()
        connection, reused = await pool.acquire(origin, timeouts.connect_s)
        try:
            connection.start(head, body)
            while not connection.headers_done:
                if connection.lost is not None:
                    # Nothing or half a status line came back: the request may not have been read at all.
                    state = "after part of an answer" if connection.got_bytes else "before answering"
                    stale = " (an idle kept-alive connection)" if reused else ""
                    raise ConnectFailed(f"the provider closed the connection {state}{stale}: {connection.lost}")
                try:
                    await connection.wait(timeouts.read_s)
                except TimeoutError:
                    raise ReadTimedOut(f"no answer within {timeouts.read_s} s") from None
        except BaseException:
            connection.close()
            pool.discard(origin)
            raise
        return StreamBody(connection, pool, origin, timeouts.read_s)

    async def aclose(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
            await asyncio.sleep(0)  # let the loop finish closing transports
