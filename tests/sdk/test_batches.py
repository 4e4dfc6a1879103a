"""Batches through wrapped official clients against the emulator, governed as the gateway governs them: the
worst case reserved at batch prices on create, each result one event at the batch price once the batch has ended
(settled on the retrieve that sees it ended, whether or not the results are ever read), never twice; a batch
that does not fit refused with the gateway's words and one blocked event; a cancelled batch releases all."""

from __future__ import annotations

import asyncio
import math
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import openai
import orjson
import pytest

import fiscus
from fiscus.batches.store import BatchStore
from fiscus.events.cost_event import CallStatus
from fiscus.money import to_nanos
from fiscus.usage.estimate import count_request_tokens
from tests.gateway.conftest import real_gateway
from tests.gateway.test_batches_openai import TIGHT as TIGHT_YAML
from tests.gateway.test_batches_openai import jsonl

DAY = [{"name": "day", "scope": {"team": "growth"}, "window": "day", "limit": {"usd": 100}}]
TIGHT = [
    {"name": "tight", "scope": {"team": "growth"}, "window": "day", "limit": {"usd": 0.0005}, "on_exhausted": "block"}
]


def params(text: str, model: str = "claude-haiku-4-5", max_tokens: int = 64) -> dict[str, Any]:
    return {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": text}]}


def reserved(governor: Any) -> int:
    return sum(status.reserved.nanos for status in governor.status())


def spent(governor: Any) -> int:
    return sum(status.spent.nanos for status in governor.status())


def until(poll: Any, done: Any) -> Any:
    deadline = time.monotonic() + 10
    while True:
        seen = poll()
        if done(seen) or time.monotonic() > deadline:
            return seen
        time.sleep(0.05)


def test_openai_batch_reserved_at_create_and_settled_on_the_retrieve_that_sees_it_completed(
    governed, openai_client
) -> None:
    governor, ledger, _, breakers = governed(DAY)
    client = fiscus.wrap(openai_client, governor=governor, breakers=breakers, team="growth", agent="nightly")
    file_id = client.files.create(file=("in.jsonl", jsonl(3)), purpose="batch").id
    batch = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    # The sum of each request's worst case at batch prices (its counted input with the 20 % margin, its cap): the
    # gateway's figure for the same file.
    sheet = governor.catalogue.sheet(provider="openai", model="gpt-4o-mini", batch=True)
    bodies = [orjson.loads(line)["body"] for line in jsonl(3).splitlines()]
    counted = [math.ceil(count_request_tokens(b, "openai_chat") * Decimal("1.2")) for b in bodies]
    worst = sum(sheet.worst_case(tokens, 40, cache_writes=False) for tokens in counted)
    assert reserved(governor) == math.ceil(worst * 10**9) > 0

    done = until(lambda: client.batches.retrieve(batch.id), lambda b: b.status == "completed")
    # Settled on that retrieve, reading the output file through the client: the results need not be read.
    assert done.status == "completed" and len(ledger.events) == 3 and reserved(governor) == 0
    content = client.files.content(done.output_file_id)
    reported = {
        line["custom_id"]: line["response"]["body"]["usage"]
        for line in (orjson.loads(text) for text in content.content.splitlines())
    }
    events = sorted(ledger.events, key=lambda e: e.tags["custom_id"])
    assert [e.tags["custom_id"] for e in events] == ["r0", "r1", "r2"]
    for event in events:
        at = event.timestamp
        batch_price = governor.catalogue.sheet(provider="openai", model="gpt-4o-mini", at=at, batch=True)
        sync_price = governor.catalogue.sheet(provider="openai", model="gpt-4o-mini", at=at)
        assert event.status is CallStatus.OK and event.batch and event.tags["batch"] == batch.id
        assert event.attribution.team == "growth" and event.attribution.agent == "nightly"
        assert event.usage.output_tokens == reported[event.tags["custom_id"]]["completion_tokens"] > 0
        assert event.cost.total == batch_price.cost(event.usage).total > 0
        assert event.saved is not None and event.saved.batch == sync_price.cost(event.usage).total - event.cost.total
    assert reserved(governor) == 0 and spent(governor) == sum(to_nanos(e.cost.total) for e in events)
    # Retrieved and read again: nothing counted twice.
    client.batches.retrieve(batch.id)
    client.files.content(done.output_file_id)
    assert len(ledger.events) == 3 and spent(governor) == sum(to_nanos(e.cost.total) for e in events)


def test_a_batch_that_does_not_fit_gets_the_gateways_answer(governed, openai_client, tmp_path, emulator_url) -> None:
    data = jsonl(5, model="gpt-4o", max_tokens=2000)
    with real_gateway(tmp_path, emulator_url, TIGHT_YAML, f"sqlite:///{tmp_path}/budget.db") as real:
        through = real.openai()
        file_id = through.files.create(file=("in.jsonl", data), purpose="batch").id
        with pytest.raises(openai.RateLimitError) as by_gateway:
            through.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    governor, ledger, _, breakers = governed(TIGHT)
    client = fiscus.wrap(openai_client, governor=governor, breakers=breakers, team="growth")
    file_id = client.files.create(file=("in.jsonl", data), purpose="batch").id
    with pytest.raises(fiscus.BudgetBlocked) as by_sdk:
        client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    assert isinstance(by_gateway.value.body, dict)
    assert by_sdk.value.message == by_gateway.value.body["message"]
    assert "5 request(s) for gpt-4o do not fit" in by_sdk.value.message and by_sdk.value.code == "budget_exhausted"
    (event,) = ledger.events
    assert event.status is CallStatus.BLOCKED and event.cost.total == 0 and event.tags["batch"] == "submitted"
    assert reserved(governor) == 0 and spent(governor) == 0


def test_a_cancelled_openai_batch_releases_its_reservation(governed, openai_client) -> None:
    governor, ledger, _, breakers = governed(DAY)
    client = fiscus.wrap(openai_client, governor=governor, breakers=breakers, team="growth")
    file_id = client.files.create(file=("in.jsonl", jsonl(4)), purpose="batch").id
    slow = client.batches.create(
        input_file_id=file_id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        extra_headers={"x-emulator-batch-delay-ms": "60000"},
    )
    assert reserved(governor) > 0
    assert client.batches.cancel(slow.id).status == "cancelling"  # the provider's own answer, handed back
    # Settled within the cancel: one retrieve after it saw the batch ended, nothing had run.
    assert len(ledger.events) == 4
    assert all(e.status is CallStatus.ERROR and e.cost.total == 0 for e in ledger.events)
    assert reserved(governor) == 0 and spent(governor) == 0
    assert client.batches.retrieve(slow.id).status == "cancelled" and len(ledger.events) == 4


def test_bad_batch_input_is_one_readable_error(governed, openai_client, anthropic_client) -> None:
    governor, ledger, _, breakers = governed(DAY)
    client = fiscus.wrap(openai_client, governor=governor, breakers=breakers, team="growth")
    body = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    line = orjson.dumps({"custom_id": "s", "method": "POST", "url": "/v1/chat/completions", "body": body})
    file_id = client.files.create(file=("s.jsonl", line), purpose="batch").id
    with pytest.raises(fiscus.FiscusError, match="stream is not supported in a batch"):
        client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    claude = fiscus.wrap(anthropic_client, governor=governor, breakers=breakers, team="growth")
    with pytest.raises(fiscus.FiscusError, match=r"requests\.1\.custom_id: a unique custom_id"):
        claude.messages.batches.create(requests=[{"custom_id": "d", "params": params("d")}] * 2)  # type: ignore[list-item]
    with pytest.raises(fiscus.FiscusError, match="batch request 'm': max_tokens: Field required"):
        claude.messages.batches.create(requests=[{"custom_id": "m", "params": {"model": "claude-haiku-4-5"}}])  # type: ignore[list-item,typeddict-item]
    assert ledger.events == [] and reserved(governor) == 0


def test_anthropic_batch_settled_once_on_the_retrieve_that_sees_it_ended(governed, anthropic_client) -> None:
    governor, ledger, _, breakers = governed(DAY)
    client = fiscus.wrap(anthropic_client, governor=governor, breakers=breakers, team="growth")
    requests = [
        {"custom_id": "h1", "params": params("first")},
        {"custom_id": "h2", "params": params("second")},
        {"custom_id": "s1", "params": params("third", model="claude-sonnet-4-6")},
    ]
    batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    assert batch.processing_status == "in_progress" and reserved(governor) > 0
    until(lambda: client.messages.batches.retrieve(batch.id), lambda b: b.processing_status == "ended")
    assert len(ledger.events) == 3 and reserved(governor) == 0  # settled there, reading the results itself
    results = {item.custom_id: item.result for item in client.messages.batches.results(batch.id)}
    assert set(results) == {"h1", "h2", "s1"} and all(r.type == "succeeded" for r in results.values())
    events = {e.tags["custom_id"]: e for e in ledger.events}
    for custom_id, event in events.items():
        model = "claude-sonnet-4-6" if custom_id == "s1" else "claude-haiku-4-5"
        usage = results[custom_id].message.usage  # type: ignore[union-attr]
        sheet = governor.catalogue.sheet(provider="anthropic", model=model, at=event.timestamp, batch=True)
        assert event.requested_model == model and event.batch and event.tags["batch"] == batch.id
        assert (event.usage.input_tokens, event.usage.output_tokens) == (usage.input_tokens, usage.output_tokens)
        assert event.cost.total == sheet.cost(event.usage).total > 0 and event.saved.batch > 0  # type: ignore[union-attr]
    assert reserved(governor) == 0 and spent(governor) == sum(to_nanos(e.cost.total) for e in events.values())
    assert len(list(client.messages.batches.results(batch.id))) == 3  # read again: nothing new
    assert len(ledger.events) == 3


def test_async_anthropic_batches_settle_and_a_cancelled_one_releases(governed, async_anthropic_client) -> None:
    governor, ledger, _, breakers = governed(DAY)
    client = fiscus.wrap(async_anthropic_client, governor=governor, breakers=breakers, team="growth")

    async def scenario() -> None:
        batch = await client.messages.batches.create(requests=[{"custom_id": "a", "params": params("a")}])
        slow = await client.messages.batches.create(
            requests=[{"custom_id": c, "params": params(c)} for c in "xyz"],
            extra_headers={"x-emulator-batch-delay-ms": "60000"},
        )
        await client.messages.batches.cancel(slow.id)
        # The cancelled batch ran nothing: settled within the cancel (a retrieve after it saw it ended).
        cancelled = [e for e in ledger.events if e.tags["batch"] == slow.id]
        assert len(cancelled) == 3 and all(e.status is CallStatus.ERROR and e.cost.total == 0 for e in cancelled)
        assert all("canceled" in (e.error or "") for e in cancelled)
        while (await client.messages.batches.retrieve(batch.id)).processing_status != "ended":
            await asyncio.sleep(0.05)
        items = [item async for item in await client.messages.batches.results(batch.id)]
        assert [item.custom_id for item in items] == ["a"]

    asyncio.run(scenario())
    (answered,) = [e for e in ledger.events if e.status is CallStatus.OK]
    assert answered.tags["custom_id"] == "a" and answered.cost.total > 0 and len(ledger.events) == 4
    assert reserved(governor) == 0 and spent(governor) == to_nanos(answered.cost.total)


def test_async_openai_batch_settles_on_the_retrieve_that_sees_it_completed(governed, async_openai_client) -> None:
    governor, ledger, _, breakers = governed(DAY)
    client = fiscus.wrap(async_openai_client, governor=governor, breakers=breakers, team="growth")

    async def scenario() -> bytes:
        file_id = (await client.files.create(file=("in.jsonl", jsonl(2)), purpose="batch")).id
        batch = await client.batches.create(
            input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        while (done := await client.batches.retrieve(batch.id)).status != "completed":
            await asyncio.sleep(0.05)
        assert len(ledger.events) == 2
        return (await client.files.content(done.output_file_id)).content

    content = asyncio.run(scenario())
    assert len(content.splitlines()) == 2 and len(ledger.events) == 2
    assert reserved(governor) == 0 and spent(governor) == sum(to_nanos(e.cost.total) for e in ledger.events) > 0


def test_a_batch_is_kept_in_the_configs_keys_database(tmp_path: Path, emulator_url: str) -> None:
    keys = f"sqlite:///{tmp_path}/keys.db"
    config = tmp_path / "fiscus.yaml"
    config.write_text(
        f"ledger: sqlite:///{tmp_path}/ledger.db\nbudget_store: sqlite:///{tmp_path}/budget.db\nkeys: {keys}\n"
    )
    client = fiscus.wrap(
        anthropic.Anthropic(base_url=emulator_url, api_key="sk-ant-test", max_retries=0), config=config, team="growth"
    )
    batch = client.messages.batches.create(requests=[{"custom_id": "k", "params": params("k")}])
    kept = BatchStore(keys, prefix="fiscus_sdk_")  # what another process on this config reads
    try:
        record = kept.get(batch.id)
        assert record is not None and not record.settled and record.request_count == 1
        assert record.groups[0].reservation is not None and record.attribution.team == "growth"
        until(lambda: client.messages.batches.retrieve(batch.id), lambda b: b.processing_status == "ended")
        settled = kept.get(batch.id)
        assert settled is not None and settled.settled
    finally:
        kept.close()
