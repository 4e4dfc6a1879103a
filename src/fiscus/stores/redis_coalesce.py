"""Coalesce the reserves and settles of one event loop into batch calls (lua/batch.lua).

Operations submitted in the same event-loop turn go to Redis as one script call: the server reads all their
keys with one MGET, runs them one after the other (each as if alone, so each stays atomic and sees the ones
before it) and writes what changed once. Under concurrency that is most of a script's server time saved per
operation; an operation alone is sent as its own script (reserve.lua, settle.lua), as before.

Each operation gets its own reply; one that fails (a counter past 2**53) fails alone. A whole call the server
refuses for want of its script or library is loaded and sent again here, for every operation in it.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import redis.asyncio
from redis.exceptions import ResponseError

from fiscus.stores.redis_scripts import ATTEMPTS, Call, Op, Scripts, batch, single

MAX_OPS = 64  # operations per script call: keeps one call's server time small
MAX_KEYS = 2000  # keys per script call: Lua's unpack() takes a few thousand values at most


class Transport(Protocol):
    async def call(self, payload: bytes) -> Any: ...


class OpCoalescer:
    """One per store and event loop. `batch=False`: every operation is its own call."""

    def __init__(
        self,
        transport: Transport,
        scripts: Scripts,
        fixed: tuple[bytes, ...],
        client: redis.asyncio.Redis,
        *,
        batch: bool = True,
    ) -> None:
        self._transport = transport
        self._scripts = scripts
        self._fixed = fixed  # KEYS[1..3] of every operation: leases, counter index, counter expiry index
        self._client = client  # to load a missing script or library
        self._max = MAX_OPS if batch else 1
        self._queue: list[tuple[Op, asyncio.Future[Any]]] = []
        self._scheduled = False
        self._sending: set[asyncio.Task[None]] = set()  # held so the loop cannot drop them

    async def call(self, op: Op) -> Any:
        """The operation's reply; an error reply raises `ResponseError`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((op, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        reply = await future
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    def _flush(self) -> None:
        self._scheduled = False
        queue, self._queue = self._queue, []
        chunk: list[tuple[Op, asyncio.Future[Any]]] = []
        keys = 0
        for item in queue:
            if chunk and (len(chunk) == self._max or keys + len(item[0].keys) > MAX_KEYS):
                self._start(chunk)
                chunk, keys = [], 0
            chunk.append(item)
            keys += len(item[0].keys)
        if chunk:
            self._start(chunk)

    def _start(self, chunk: list[tuple[Op, asyncio.Future[Any]]]) -> None:
        task = asyncio.ensure_future(self._send(chunk))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, chunk: list[tuple[Op, asyncio.Future[Any]]]) -> None:
        ops = [op for op, _ in chunk]
        whole: Call = single(ops[0], self._fixed) if len(ops) == 1 else batch(ops, self._fixed)
        try:
            reply = await self._call(whole)
        except asyncio.CancelledError:
            for _, future in chunk:
                future.cancel()
            raise
        except Exception as exc:  # the call as a whole failed: every operation in it hears of it
            for _, future in chunk:
                if not future.done():
                    future.set_exception(exc)
            return
        replies = [reply] if len(ops) == 1 else reply
        for (_, future), each in zip(chunk, replies, strict=True):
            if not future.done():  # else its caller was cancelled: the operation ran all the same
                future.set_result(each)

    async def _call(self, whole: Call) -> Any:
        for attempt in range(ATTEMPTS):
            try:
                return await self._transport.call(self._scripts.payload(whole))
            except ResponseError as exc:
                remedy = self._scripts.remedy(exc)
                if remedy is None or attempt == ATTEMPTS - 1:
                    raise
                await self._scripts.afix(self._client, remedy, whole.name)
        raise AssertionError("unreachable")
