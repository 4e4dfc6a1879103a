"""The gateway's own poll of the batches it admitted: a batch that ended while nobody polled it is settled within
`gateway.batch_poll_s`, so its spend lands in the budgets and the ledger without waiting for the client. Every
worker polls; settling is idempotent, so two workers finding the same batch ended count it once."""

from __future__ import annotations

import asyncio
import logging

from fiscus.attribution import Attribution
from fiscus.gateway.batches import BatchDoor, Caller, provider_json
from fiscus.gateway.batches_settle import batch_path, settle_if_ended

log = logging.getLogger("fiscus.gateway")

_WATCH = Caller("", Attribution(), "normal", (), {})  # no client headers: the provider's own credentials only


async def poll_once(door: BatchDoor) -> int:
    """Look at every unsettled batch once; how many this poll settled."""
    settled = 0
    for batch_id in await asyncio.to_thread(door.store.unsettled):
        record = await asyncio.to_thread(door.store.get, batch_id)
        if record is None or record.settled:
            continue
        answer = await door.upstream(record.provider, "GET", batch_path(record), _WATCH)
        if not answer.ok:
            continue
        if await settle_if_ended(door, _WATCH, record, provider_json(answer)) is not None:
            settled += 1
    return settled


def start_watch(door: BatchDoor, every_s: float) -> asyncio.Task[None] | None:
    if not every_s:
        return None

    async def run() -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await poll_once(door)
            except Exception:  # a provider or store hiccup must not end the watch
                log.exception("batch poll failed")

    return asyncio.get_running_loop().create_task(run(), name="fiscus-batch-poll")
