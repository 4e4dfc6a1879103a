"""`GroupCommit`: operations queued during one turn of an event loop run as one batch (one transaction).

Under concurrency most of a SQLite settle's cost is its COMMIT (the WAL frames of every page it touched), so
settles that arrive together share one. The wait is bounded by a single loop turn: the batch runs from
`call_soon`, after the tasks that were ready with it, never on a timer. Each caller is answered only after the
batch has committed, so a settled call is on disk before its answer leaves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    def __init__(self, run: Callable[[list[Item]], list[Result | Exception]]) -> None:
        self._run = run  # one result or exception per item, in order
        self._queues: dict[asyncio.AbstractEventLoop, list[tuple[Item, asyncio.Future[Result]]]] = {}
        self.batches = 0  # batches run, and the items they held: how much the grouping saved
        self.items = 0

    async def submit(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = []
            loop.call_soon(self._flush, loop)
        queue.append((item, future))
        # A cancelled caller leaves its item in the batch: an incurred cost is settled all the same.
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        queue = self._queues.pop(loop, [])
        if not queue:
            return
        self.batches += 1
        self.items += len(queue)
        results: list[Result | Exception]
        try:
            results = self._run([item for item, _ in queue])
        except Exception as exc:  # the batch's own failure: every caller hears of it
            results = [exc] * len(queue)
        for (_, future), result in zip(queue, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
