"""Settling a batch at the gateway once it has ended (`fiscus.batches.settle`, the steps the SDK runs too).

Results become readable all at once, when the provider ends the batch; the gateway settles them the first time it
sees the batch ended — a poll of the batch (retrieve or list), a fetch of its results or output file, or its own
watch — reading the results from the provider itself when the client has not fetched them.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from fiscus.batches.drive import arun
from fiscus.batches.records import BatchRecord
from fiscus.batches.results import ResultLine
from fiscus.batches.settle import settle_steps
from fiscus.batches.store import BatchStore
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
