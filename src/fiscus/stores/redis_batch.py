"""Coalesce concurrent EVALSHA calls of one event loop into pipelines on the async Redis client.

With many tasks deciding at once, the cost of a budget check is the client's per-command overhead and one
network round trip each. Here the calls that arrive while a pipeline is in flight ride the next one: one
write and one read for the lot. Each script stays atomic on the server; only the transport is shared.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio
from redis.exceptions import NoScriptError, RedisError

MAX_BATCH = 256


class ScriptBatcher:
    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._client = client
        self._queue: list[tuple[str, str, list[str], list[str | int], asyncio.Future[Any]]] = []
        self._flushing = False
        self._flush_task: asyncio.Task[None] | None = None  # held so the loop cannot drop it

    async def evalsha(self, sha: str, source: str, keys: list[str], args: list[str | int]) -> Any:
        if self._flushing:  # a call is in flight: ride the next pipeline
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._queue.append((sha, source, keys, args, future))
            return await future
        self._flushing = True  # idle: go straight, then send whatever queued up behind this call
        try:
            try:
                return await self._client.evalsha(sha, len(keys), *keys, *args)
            except NoScriptError:
                await self._client.script_load(source)
                return await self._client.evalsha(sha, len(keys), *keys, *args)
        finally:
            if self._queue:
                self._flush_task = asyncio.get_running_loop().create_task(self._flush())
            else:
                self._flushing = False

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                await self._send(batch)
        finally:
            self._flushing = False

    async def _send(self, batch: list[tuple[str, str, list[str], list[str | int], asyncio.Future[Any]]]) -> None:
        try:
            if len(batch) == 1:  # alone: a pipeline would only add overhead
                sha, _, keys, args, _ = batch[0]
                try:
                    replies = [await self._client.evalsha(sha, len(keys), *keys, *args)]
                except NoScriptError as exc:
                    replies = [exc]
            else:
                pipe = self._client.pipeline(transaction=False)
                for sha, _, keys, args, _ in batch:
                    pipe.evalsha(sha, len(keys), *keys, *args)
                replies = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError) as exc:
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (sha, source, keys, args, future), reply in zip(batch, replies, strict=True):
            if isinstance(reply, NoScriptError):  # the server lost its scripts (restart, failover): load, retry
                try:
                    await self._client.script_load(source)
                    reply = await self._client.evalsha(sha, len(keys), *keys, *args)
                except RedisError as exc:
                    reply = exc
            if future.done():
                continue  # the caller was cancelled
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)
