"""A batch cancelled part-way through the real gateway with the official clients: the requests that ran before
the cancel are settled at batch prices from their answers, the others recorded as not run at zero, and nothing
is left reserved; the ledger and the budget counters agree to the nano-dollar."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from fiscus.events.cost_event import CallStatus
from fiscus.money import to_nanos
from tests.gateway.conftest import Real, real_gateway
from tests.gateway.test_batches_anthropic import params, wait_ended
from tests.gateway.test_batches_openai import POLICY, jsonl, reserved_nanos, spent_nanos, wait_for

PART_WAY = {"x-emulator-batch-delay-ms": "60000", "x-emulator-batch-run-before-cancel": "2"}


@pytest.fixture
def real(tmp_path: Path, emulator_url: str) -> Iterator[Real]:
    with real_gateway(tmp_path, emulator_url, POLICY, f"sqlite:///{tmp_path}/budget.db") as served:
        yield served


def _settled_as_ran(real: Real, events: list[Any], provider: str, model: str, ran: dict[str, Any]) -> None:
    """Each request in `ran` (custom_id → its answer's usage) priced at batch prices; the rest at zero."""
    for event in events:
        custom_id = event.tags["custom_id"]
        if custom_id in ran:
            sheet = real.governor.catalogue.sheet(provider=provider, model=model, at=event.timestamp, batch=True)
            assert event.status is CallStatus.OK and event.batch
            assert (event.usage.input_tokens, event.usage.output_tokens) == ran[custom_id]
            assert event.cost.total == sheet.cost(event.usage).total > 0
        else:
            assert event.status is CallStatus.ERROR and event.cost.total == 0 and "cancel" in (event.error or "")
    assert reserved_nanos(real) == 0
    assert spent_nanos(real) == sum(to_nanos(e.cost.total) for e in events) > 0


def test_an_openai_batch_cancelled_part_way_settles_what_ran(real: Real) -> None:
    client = real.openai()
    file_id = client.files.create(file=("in.jsonl", jsonl(4)), purpose="batch").id
    batch = client.batches.create(
        input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h", extra_headers=PART_WAY
    )
    assert reserved_nanos(real) > 0
    assert client.batches.cancel(batch.id).status == "cancelling"
    raw = wait_for(client, batch.id, "cancelled")
    stopped = raw.parse()
    assert stopped.status == "cancelled" and stopped.request_counts.completed == 2
    assert "x-fiscus-batch-cost-usd" in raw.headers
    output = client.files.content(stopped.output_file_id).content  # the submitting key reads the output
    ran = {}
    for text in output.splitlines():
        line = orjson.loads(text)
        usage = line["response"]["body"]["usage"]
        ran[line["custom_id"]] = (usage["prompt_tokens"], usage["completion_tokens"])
    assert set(ran) == {"r0", "r1"}
    events = real.events()
    assert sorted(e.tags["custom_id"] for e in events) == ["r0", "r1", "r2", "r3"]
    _settled_as_ran(real, events, "openai", "gpt-4o-mini", ran)
    spent = spent_nanos(real)
    client.batches.retrieve(batch.id)  # polled again: nothing counted twice
    assert len(real.events()) == 4 and spent_nanos(real) == spent


def test_an_anthropic_batch_cancelled_part_way_settles_what_ran(real: Real) -> None:
    client = real.anthropic()
    requests = [{"custom_id": c, "params": params(c)} for c in "xyz"]
    batch = client.messages.batches.create(requests=requests, extra_headers=PART_WAY)  # type: ignore[arg-type]
    assert reserved_nanos(real) > 0
    assert client.messages.batches.cancel(batch.id).processing_status == "canceling"
    ended = wait_ended(client, batch.id).parse()
    assert (ended.request_counts.succeeded, ended.request_counts.canceled) == (2, 1)
    results = {item.custom_id: item.result for item in client.messages.batches.results(batch.id)}
    assert {c: r.type for c, r in results.items()} == {"x": "succeeded", "y": "succeeded", "z": "canceled"}
    ran = {
        c: (r.message.usage.input_tokens, r.message.usage.output_tokens)  # type: ignore[union-attr]
        for c, r in results.items()
        if r.type == "succeeded"
    }
    events = real.events()
    assert sorted(e.tags["custom_id"] for e in events) == ["x", "y", "z"]
    _settled_as_ran(real, events, "anthropic", "claude-haiku-4-5", ran)
