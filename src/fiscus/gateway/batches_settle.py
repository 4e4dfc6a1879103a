"""Settling a batch at the gateway once it has ended (`fiscus.batches.settle`, the steps the SDK runs too).

Results become readable all at once, when the provider ends the batch; the gateway settles them the first time it
sees the batch ended — a poll of the batch (retrieve or list), a fetch of its results or output file, or its own
watch — reading the results from the provider itself when the client has not fetched them. Whether a batch has
ended, what holds its results and how they read are `fiscus.batches.ended`'s answers, the same for a wrapped
client and `fiscus batches settle`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from fiscus.batches.drive import arun
from fiscus.batches.ended import has_ended, read_results, to_read
from fiscus.batches.records import BatchRecord
from fiscus.batches.results import ResultLine, json_lines
from fiscus.batches.settle import settle_steps
from fiscus.batches.store import BatchStore
from fiscus.gateway.batches import BatchDoor, Caller
from fiscus.usage.wire import WireFormat


async def settle_batch(
    governor: Any,
    store: BatchStore,
    record: BatchRecord,
    results: dict[str, ResultLine],
    fmt: WireFormat,
    *,
    missing: str = "no result for this request",
) -> Decimal:
    """Record every request of `record` and settle its reservations; the batch's total cost."""
    cost = await arun(settle_steps(record, results, fmt, missing=missing), governor)
    await asyncio.to_thread(store.mark_settled, record.id)
    return cost


def batch_path(record: BatchRecord) -> str:
    """Where the provider describes `record`'s batch."""
    return f"/batches/{record.id}" if record.wire == "openai" else f"/messages/batches/{record.id}"


def _result_path(record: BatchRecord, ident: str) -> str:
    return f"/files/{ident}/content" if record.wire == "openai" else f"/messages/batches/{ident}/results"


async def settle_read(
    door: BatchDoor, record: BatchRecord, batch: dict[str, Any], read: Iterable[Iterable[dict[str, Any]]]
) -> str:
    """Settle `record` from its results already read (each what `to_read` named); its cost as a decimal string."""
    results, fmt, missing = read_results(record, batch, read)
    return format(await settle_batch(door.governor, door.store, record, results, fmt, missing=missing), "f")


async def settle_if_ended(door: BatchDoor, caller: Caller, record: BatchRecord, batch: dict[str, Any]) -> str | None:
    """Settle `record` when the provider's description of it, `batch`, says it ended, reading its results from the
    provider; the batch's cost as a decimal string when this call settled it."""
    if record.settled or not has_ended(record, batch):
        return None
    idents = to_read(record, batch)
    if record.wire == "openai":  # the output and error files are the submitting key's to read
        for file_id in idents:
            await asyncio.to_thread(door.store.own_file, file_id, record.key_id)

    async def work() -> str | None:
        read = []
        for ident in idents:
            content = await door.upstream(record.provider, "GET", _result_path(record, ident), caller)
            if not content.ok:
                return None  # read again on the next poll
            read.append(json_lines(content.body))
        return await settle_read(door, record, batch, read)

    return await door.settle(record, work)
