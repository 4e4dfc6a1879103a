"""A batch cancelled part-way through wrapped official clients: the cancel (or the retrieve that sees the batch
ended) settles the requests that ran before it at batch prices from their answers, records the others as not
run at zero and releases their share; nothing is left reserved and the ledger equals the budget counters to the
nano-dollar, as through the gateway."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

import fiscus
from fiscus.events.cost_event import CallStatus
from fiscus.money import to_nanos
from tests.gateway.test_batches_openai import jsonl
from tests.sdk.test_batches import DAY, params, reserved, spent, until

PART_WAY = {"x-emulator-batch-delay-ms": "60000", "x-emulator-batch-run-before-cancel": "2"}


def _settled_as_ran(governor: Any, events: list[Any], provider: str, model: str, ran: dict[str, Any]) -> None:
    """Each request in `ran` (custom_id → its answer's usage) priced at batch prices; the rest at zero."""
    for event in events:
        custom_id = event.tags["custom_id"]
        if custom_id in ran:
            sheet = governor.catalogue.sheet(provider=provider, model=model, at=event.timestamp, batch=True)
            assert event.status is CallStatus.OK and event.batch
            assert (event.usage.input_tokens, event.usage.output_tokens) == ran[custom_id]
            assert event.cost.total == sheet.cost(event.usage).total > 0
        else:
            assert event.status is CallStatus.ERROR and event.cost.total == 0 and "cancel" in (event.error or "")
    assert reserved(governor) == 0
    assert spent(governor) == sum(to_nanos(e.cost.total) for e in events) > 0


def test_an_openai_batch_cancelled_part_way_settles_what_ran(governed, openai_client) -> None:
    governor, ledger, _, breakers = governed(DAY)
    client = fiscus.wrap(openai_client, governor=governor, breakers=breakers, team="growth")
    file_id = client.files.create(file=("in.jsonl", jsonl(4)), purpose="batch").id
    batch = client.batches.create(
        input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h", extra_headers=PART_WAY
    )
    assert reserved(governor) > 0
    assert client.batches.cancel(batch.id).status == "cancelling"  # the provider's own answer, handed back
    # Settled within the cancel: the retrieve after it saw the batch cancelled, two of its requests answered.
    assert len(ledger.events) == 4 and reserved(governor) == 0
    stopped = until(lambda: client.batches.retrieve(batch.id), lambda b: b.status == "cancelled")
    assert stopped.status == "cancelled" and stopped.request_counts.completed == 2
    ran = {}
    for text in client.files.content(stopped.output_file_id).content.splitlines():
        line = orjson.loads(text)
        usage = line["response"]["body"]["usage"]
        ran[line["custom_id"]] = (usage["prompt_tokens"], usage["completion_tokens"])
    assert set(ran) == {"r0", "r1"}
    _settled_as_ran(governor, ledger.events, "openai", "gpt-4o-mini", ran)
    assert len(ledger.events) == 4  # retrieved again: nothing counted twice


def test_an_anthropic_batch_cancelled_part_way_settles_what_ran(governed, anthropic_client) -> None:
    governor, ledger, _, breakers = governed(DAY)
    client = fiscus.wrap(anthropic_client, governor=governor, breakers=breakers, team="growth")
    requests = [{"custom_id": c, "params": params(c)} for c in "xyz"]
    batch = client.messages.batches.create(requests=requests, extra_headers=PART_WAY)
    assert client.messages.batches.cancel(batch.id).processing_status == "canceling"
    assert len(ledger.events) == 3 and reserved(governor) == 0
    ended = client.messages.batches.retrieve(batch.id)
    assert (ended.request_counts.succeeded, ended.request_counts.canceled) == (2, 1)
    results = {item.custom_id: item.result for item in client.messages.batches.results(batch.id)}
    assert {c: r.type for c, r in results.items()} == {"x": "succeeded", "y": "succeeded", "z": "canceled"}
    ran = {
        c: (r.message.usage.input_tokens, r.message.usage.output_tokens)  # type: ignore[union-attr]
        for c, r in results.items()
        if r.type == "succeeded"
    }
    _settled_as_ran(governor, ledger.events, "anthropic", "claude-haiku-4-5", ran)
    assert len(ledger.events) == 3


def test_an_async_anthropic_batch_cancelled_part_way_settles_what_ran(governed, async_anthropic_client) -> None:
    governor, ledger, _, breakers = governed(DAY)
    client = fiscus.wrap(async_anthropic_client, governor=governor, breakers=breakers, team="growth")

    async def scenario() -> dict[str, Any]:
        requests = [{"custom_id": c, "params": params(c)} for c in "xyz"]
        batch = await client.messages.batches.create(requests=requests, extra_headers=PART_WAY)
        await client.messages.batches.cancel(batch.id)
        items = [item async for item in await client.messages.batches.results(batch.id)]
        return {item.custom_id: item.result for item in items}

    results = asyncio.run(scenario())
    ran = {
        c: (r.message.usage.input_tokens, r.message.usage.output_tokens)
        for c, r in results.items()
        if r.type == "succeeded"
    }
    assert set(ran) == {"x", "y"} and results["z"].type == "canceled"
    _settled_as_ran(governor, ledger.events, "anthropic", "claude-haiku-4-5", ran)
    assert len(ledger.events) == 3
