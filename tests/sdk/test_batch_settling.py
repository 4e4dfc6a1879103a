"""A wrapped client's batch settles whether or not anyone reads its results: `fiscus batches settle` (on SQLite and
Redis budget stores) settles the ones that ended with the config's provider credentials, once, and a later
retrieve or cancel counts nothing twice; the raw-response create, retrieve and cancel are governed like the plain
ones, a streaming-response create is refused; a bad run is one line and exit 2."""

from __future__ import annotations

import asyncio
import os
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

import fiscus
from fiscus.batches.store import BatchStore
from fiscus.cli.main import main
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.ledger import open_ledger
from fiscus.money import to_nanos
from fiscus.sdk.runtime import default_governor
from tests.gateway.test_batches_openai import jsonl
from tests.sdk.test_batches import DAY, params, reserved, spent, until

KEY_ENV = "FISCUS_SDK_TEST_UPSTREAM_KEY"
POLICY = "budgets:\n  - {name: day, scope: {team: growth}, window: day, limit: {usd: 100}}\n"


def write_config(tmp: Path, emulator_url: str, budget_store: str, *, providers: bool = True) -> Path:
    os.environ.setdefault(KEY_ENV, "sk-emulator")
    (tmp / "policy.yaml").write_text(POLICY)
    text = (
        f"ledger: sqlite:///{tmp}/ledger.db\nbudget_store: {budget_store}\nkeys: sqlite:///{tmp}/keys.db\n"
        f"policy: {tmp}/policy.yaml\n"
    )
    if providers:
        text += "providers:\n"
        for name in ("openai", "anthropic"):
            text += f"  {name}: {{kind: {name}, base_url: '{emulator_url}/v1', api_key_env: {KEY_ENV}}}\n"
    path = tmp / ("fiscus.yaml" if providers else "bare.yaml")
    path.write_text(text)
    return path


def ledger_events(tmp: Path) -> list[CostEvent]:
    with open_ledger(f"sqlite:///{tmp}/ledger.db") as ledger:
        return list(ledger.events())


@pytest.fixture(params=["sqlite", "redis"])
def budget_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/budget.db"
    prefix = request.getfixturevalue("redis_prefix")
    return f"{request.getfixturevalue('redis_url')}?prefix={prefix}"


def test_fiscus_batches_settle_settles_what_nobody_read(
    tmp_path: Path, emulator_url: str, budget_store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, emulator_url, budget_store)
    bare = write_config(tmp_path, emulator_url, budget_store, providers=False)
    governor = default_governor(config)
    gpt = fiscus.wrap(
        openai.OpenAI(base_url=f"{emulator_url}/v1", api_key="sk-test", max_retries=0), config=config, team="growth"
    )
    claude = fiscus.wrap(
        anthropic.Anthropic(base_url=emulator_url, api_key="sk-ant-test", max_retries=0), config=config, team="growth"
    )
    file_id = gpt.files.create(file=("in.jsonl", jsonl(2)), purpose="batch").id
    done_gpt = gpt.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    done_claude = claude.messages.batches.create(requests=[{"custom_id": c, "params": params(c)} for c in "ab"])
    slow = claude.messages.batches.create(
        requests=[{"custom_id": "z", "params": params("z")}], extra_headers={"x-emulator-batch-delay-ms": "60000"}
    )
    held = reserved(governor)
    assert held > 0 and ledger_events(tmp_path) == []
    time.sleep(0.5)  # the emulator ends a batch 300 ms after it was made; nobody retrieves them

    # Without provider credentials: one line naming why, exit 2, nothing settled.
    assert main(["batches", "settle", "--config", str(bare)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fiscus: error: 3 batch(es) could not be read; first: batch ")
    assert "no provider of kind" in err and len(err.splitlines()) == 1 and ledger_events(tmp_path) == []

    assert main(["batches", "settle", "--config", str(config)]) == 0
    events = ledger_events(tmp_path)
    cost = sum(e.cost.total for e in events)
    assert capsys.readouterr().out.strip() == f"settled 2 batch(es) (${cost}); 1 still running"
    assert sorted(e.tags["custom_id"] for e in events) == ["a", "b", "r0", "r1"]
    assert all(e.status is CallStatus.OK and e.batch and e.cost.total > 0 for e in events)
    assert {e.tags["batch"] for e in events} == {done_gpt.id, done_claude.id}
    store = BatchStore(f"sqlite:///{tmp_path}/keys.db", prefix="fiscus_sdk_")
    try:
        assert store.unsettled() == [slow.id]
        record = store.get(slow.id)
        assert record is not None
        slow_worst = to_nanos(Decimal(record.worst_case_usd))
    finally:
        store.close()
    assert reserved(governor) == slow_worst < held
    assert spent(governor) == sum(to_nanos(e.cost.total) for e in events)

    # Again, and through the clients: nothing counted twice.
    assert main(["batches", "settle", "--config", str(config)]) == 0
    assert capsys.readouterr().out.strip() == "settled 0 batch(es) ($0); 1 still running"
    gpt.batches.retrieve(done_gpt.id)
    claude.messages.batches.retrieve(done_claude.id)
    assert len(list(claude.messages.batches.results(done_claude.id))) == 2
    assert governor.ledger.flush(timeout=10)
    assert len(ledger_events(tmp_path)) == 4

    # The slow one cancelled through the client: settled there, the rest released.
    claude.messages.batches.cancel(slow.id)
    assert governor.ledger.flush(timeout=10)
    (cancelled,) = [e for e in ledger_events(tmp_path) if e.tags["batch"] == slow.id]
    assert cancelled.status is CallStatus.ERROR and cancelled.cost.total == 0
    assert reserved(governor) == 0 and spent(governor) == sum(to_nanos(e.cost.total) for e in events)
    assert main(["batches", "settle", "--config", str(config), "--json"]) == 0
    assert '"settled": 0, "running": 0' in capsys.readouterr().out


def test_raw_response_batches_are_governed(governed, openai_client) -> None:
    governor, ledger, _, breakers = governed(DAY)
    client = fiscus.wrap(openai_client, governor=governor, breakers=breakers, team="growth")
    file_id = client.files.create(file=("in.jsonl", jsonl(2)), purpose="batch").id
    raw = client.batches.with_raw_response.create(
        input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    batch = raw.parse()  # the client's own raw response, handed back
    assert raw.http_response.status_code == 200 and batch.status == "validating" and reserved(governor) > 0
    done = until(lambda: client.batches.with_raw_response.retrieve(batch.id).parse(), lambda b: b.status == "completed")
    assert done.status == "completed" and len(ledger.events) == 2 and reserved(governor) == 0
    assert spent(governor) == sum(to_nanos(e.cost.total) for e in ledger.events) > 0
    with pytest.raises(fiscus.FiscusError, match=r"batches\.with_streaming_response\.create is not governed"):
        client.batches.with_streaming_response.create(
            input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    assert reserved(governor) == 0 and len(ledger.events) == 2


def test_async_raw_response_anthropic_batch_cancelled_releases(governed, async_anthropic_client) -> None:
    governor, ledger, _, breakers = governed(DAY)
    client = fiscus.wrap(async_anthropic_client, governor=governor, breakers=breakers, team="growth")

    async def scenario() -> Any:
        raw = await client.messages.batches.with_raw_response.create(
            requests=[{"custom_id": c, "params": params(c)} for c in "xy"],
            extra_headers={"x-emulator-batch-delay-ms": "60000"},
        )
        batch = await raw.parse()
        assert reserved(governor) > 0 and ledger.events == []
        cancelled = await client.messages.batches.with_raw_response.cancel(batch.id)
        return await cancelled.parse()

    answer = asyncio.run(scenario())
    assert answer.processing_status in ("canceling", "ended")
    assert len(ledger.events) == 2 and all(e.status is CallStatus.ERROR for e in ledger.events)
    assert reserved(governor) == 0 and spent(governor) == 0
    with pytest.raises(fiscus.FiscusError, match=r"messages\.batches\.with_streaming_response\.create"):
        client.messages.batches.with_streaming_response.create(requests=[{"custom_id": "s", "params": params("s")}])
