"""A pipelined Redis connection for the async budget scripts: pre-packed commands in, hiredis replies out.

Why not redis-py's own async client: per command it spends tens of microseconds on argument encoding,
connection checkout and a coroutine per reply, which one Python process pays for every budget decision.
Here a caller hands over a ready RESP command (bytes); commands issued in the same event-loop turn go out in
one write, and the replies are parsed by hiredis inside `data_received` and matched to callers in order
(Redis answers in order on a connection). Many calls can be in flight at once: it is true pipelining, not a
lock-step batch. Each script stays atomic on the server; only the transport is shared.

Plain TCP only (host, port, db, username/password, timeouts taken from the redis-py client's pool); the
store falls back to redis-py's pipeline path for TLS, unix sockets or RESP3 (see `RedisStore`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

DEFAULT_TIMEOUT = 5.0  # redis-py's default socket timeout, used when the client sets none


def bulk(data: bytes) -> bytes:
    """One RESP bulk string."""
    return b"$%d\r\n%s\r\n" % (len(data), data)


def command(parts: list[bytes]) -> bytes:
    """A RESP command from bulk strings made by `bulk`."""
    return b"*%d\r\n%s" % (len(parts), b"".join(parts))


def reply_error(message: str) -> ResponseError:
    return NoScriptError(message) if message.startswith("NOSCRIPT") else ResponseError(message)


class _Protocol(asyncio.Protocol):
    def __init__(self, channel: ScriptChannel) -> None:
        self._channel = channel

    def data_received(self, data: bytes) -> None:
        self._channel._received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._channel._lost(exc)


class ScriptChannel:
    """One connection, opened on first use and again after a failure; bound to the event loop that opened it."""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        self._host = kwargs.get("host", "localhost")
        self._port = int(kwargs.get("port", 6379))
        self._hello = _handshake(kwargs)
        timeout = kwargs.get("socket_timeout", DEFAULT_TIMEOUT)
        self._timeout = float(timeout) if timeout else None
        connect_timeout = kwargs.get("socket_connect_timeout", DEFAULT_TIMEOUT)
        self._connect_timeout = float(connect_timeout) if connect_timeout else None
        self._transport: asyncio.Transport | None = None
        self._connecting: asyncio.Future[None] | None = None
        self._reader = hiredis.Reader(replyError=reply_error)
        self._pending: deque[asyncio.Future[Any]] = deque()
        self._outbox: list[bytes] = []
        self._flush_scheduled = False
        self._progress = 0  # replies received; the watchdog checks it moves while replies are owed
        self._watchdog: asyncio.TimerHandle | None = None

    async def call(self, payload: bytes) -> Any:
        """Send one packed command; its reply (an error reply raises `ResponseError`/`NoScriptError`)."""
        if self._transport is None:
            await self._connect()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append(future)
        self._outbox.append(payload)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        reply = await future
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    # -- internals ------------------------------------------------------------------------------------

    async def _connect(self) -> None:
        if self._connecting is not None:  # another caller is connecting: wait for it
            await asyncio.shield(self._connecting)
            return
        loop = asyncio.get_running_loop()
        self._connecting = loop.create_future()
        try:
            try:
                transport, _ = await asyncio.wait_for(
                    loop.create_connection(lambda: _Protocol(self), self._host, self._port), self._connect_timeout
                )
            except (TimeoutError, OSError) as exc:
                raise RedisConnectionError(f"Error connecting to {self._host}:{self._port}. {exc}") from exc
            self._reader = hiredis.Reader(replyError=reply_error)
            self._transport = transport  # type: ignore[assignment]
            for payload in self._hello:  # AUTH / SELECT go first; their replies are checked like any other
                await self.call(payload)
            self._connecting.set_result(None)
        except BaseException as exc:
            self._connecting.set_exception(exc)
            self._connecting.exception()  # retrieved: waiters get it through shield
            self.close()
            raise
        finally:
            self._connecting = None

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._outbox:
            return
        data, self._outbox = b"".join(self._outbox), []
        if self._transport is None:
            self._fail(RedisConnectionError(f"Connection to {self._host}:{self._port} closed"))
            return
        self._transport.write(data)
        if self._timeout is not None and self._watchdog is None:
            self._arm_watchdog(self._progress)

    def _arm_watchdog(self, seen: int) -> None:
        loop = asyncio.get_running_loop()
        self._watchdog = loop.call_later(self._timeout or 0.0, self._check, seen)

    def _check(self, seen: int) -> None:
        self._watchdog = None
        if not self._pending:
            return
        if self._progress == seen:  # nothing came back for a whole timeout: give up on this connection
            self._fail(RedisTimeoutError(f"Timeout reading from {self._host}:{self._port}"))
            return
        self._arm_watchdog(self._progress)

    def _received(self, data: bytes) -> None:
        reader, pending = self._reader, self._pending
        reader.feed(data)
        while True:
            reply = reader.gets()
            if reply is False:
                return
            self._progress += 1
            if pending:
                future = pending.popleft()
                if not future.done():  # else the caller was cancelled; the reply is dropped in order
                    future.set_result(reply)

    def _lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._fail(RedisConnectionError(f"Connection to {self._host}:{self._port} lost: {exc or 'closed'}"))

    def _fail(self, error: Exception) -> None:
        """Every caller still owed a reply gets `error`; the connection is dropped and reopened on next use."""
        if self._transport is not None:
            self._transport.abort()
            self._transport = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        pending, self._pending = self._pending, deque()
        self._outbox = []
        for future in pending:
            if not future.done():
                future.set_exception(error)


def _handshake(kwargs: dict[str, Any]) -> list[bytes]:
    """AUTH and SELECT commands for a new connection, from a redis-py connection pool's keyword arguments."""
    commands = []
    password, username = kwargs.get("password"), kwargs.get("username")
    if password is not None:
        auth = [b"AUTH", username.encode(), password.encode()] if username else [b"AUTH", password.encode()]
        commands.append(command([bulk(part) for part in auth]))
    db = int(kwargs.get("db") or 0)
    if db:
        commands.append(command([bulk(b"SELECT"), bulk(str(db).encode())]))
    return commands


def usable(pool: Any) -> bool:
    """Whether a redis-py async pool describes a connection this channel can open: plain TCP, RESP2."""
    from redis.asyncio.connection import Connection

    kwargs = pool.connection_kwargs
    return (
        pool.connection_class is Connection
        and kwargs.get("protocol") in (None, 2, "2")
        and kwargs.get("credential_provider") is None
    )
