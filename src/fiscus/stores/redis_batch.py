"""Coalesce concurrent script calls of one event loop into pipelines on a redis-py async connection.

The fallback transport of `RedisStore`'s async methods when `redis_channel` cannot open the connection itself
(TLS, unix sockets, RESP3, credential providers). Calls that arrive while a pipeline is in flight ride the
next one: one write and one read for the lot. Each script stays atomic on the server; only the transport is
shared. Commands come pre-packed (RESP bytes), as for the channel.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio
from redis.exceptions import ResponseError

MAX_BATCH = 256


class ScriptBatcher:
    def __init__(self, client: redis.asyncio.Redis, *, pipeline: bool = True) -> None:
        self._pool = client.connection_pool
        self._pipeline = pipeline  # False: every call on its own pooled connection
        self._queue: list[tuple[bytes, asyncio.Future[Any]]] = []
        self._flushing = False
        self._flush_task: asyncio.Task[None] | None = None  # held so the loop cannot drop it

    async def call(self, payload: bytes) -> Any:
        """Send one packed command; its reply (an error reply raises `ResponseError`/`NoScriptError`)."""
        if not self._pipeline:
            reply = (await self._send([payload]))[0]
        elif self._flushing:  # a pipeline is in flight: ride the next one
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._queue.append((payload, future))
            reply = await future
        else:
            self._flushing = True  # idle: go straight, then send whatever queued up behind this call
            try:
                reply = (await self._send([payload]))[0]
            finally:
                if self._queue:
                    self._flush_task = asyncio.get_running_loop().create_task(self._flush())
                else:
                    self._flushing = False
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    def close(self) -> None:
        """Connections belong to the client's pool; closing the client closes them."""

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                try:
                    replies = await self._send([payload for payload, _ in batch])
                except Exception as exc:  # the connection failed: every caller of this batch hears of it
                    replies = [exc] * len(batch)
                for (_, future), reply in zip(batch, replies, strict=True):
                    if future.done():
                        continue  # the caller was cancelled
                    if isinstance(reply, Exception) and not isinstance(reply, ResponseError):
                        future.set_exception(reply)
                    else:
                        future.set_result(reply)
        finally:
            self._flushing = False

    async def _send(self, payloads: list[bytes]) -> list[Any]:
        connection = await self._pool.get_connection()
        try:
            await connection.send_packed_command(b"".join(payloads))
            replies: list[Any] = []
            for _ in payloads:
                try:
                    replies.append(await connection.read_response())
                except ResponseError as exc:  # an error reply: the connection is still in step
                    replies.append(exc)
            return replies
        except BaseException:
            await connection.disconnect()
            raise
        finally:
            await self._pool.release(connection)
