"""OpenAI Files + Batch through the real gateway with the official client: the batch's worst case reserved at
batch prices on submit, every result settled as its own event at the catalogue's batch price (the batch lever
against the synchronous price) when a poll sees the batch ended, once however often it is polled, the unused
reservation released; a batch that does not fit refused in OpenAI's format; one key cannot see another's batch."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from fiscus.events.cost_event import CallStatus
from fiscus.money import to_nanos
from fiscus.usage.estimate import count_request_tokens
from tests.gateway.conftest import Real, real_gateway

POLICY = """
version: 1
budgets:
  - {name: day, scope: {team: growth}, window: day, limit: {usd: 100}}
"""
TIGHT = """
version: 1
budgets:
  - name: tight
    scope: {team: growth}
    window: day
    limit: {usd: 0.0005}
    on_exhausted: block
"""


def jsonl(count: int, *, model: str = "gpt-4o-mini", max_tokens: int = 40) -> bytes:
    lines = [
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": f"item {i}"}]},
        }
        for i in range(count)
    ]
    return b"\n".join(orjson.dumps(line) for line in lines) + b"\n"


def wait_for(client: openai.OpenAI, batch_id: str, *ended: str) -> Any:
    deadline = time.monotonic() + 10
    while True:
        raw = client.batches.with_raw_response.retrieve(batch_id)
        batch = raw.parse()
        if batch.status in ended or time.monotonic() > deadline:
            return raw
        time.sleep(0.1)


def reserved_nanos(real: Real) -> int:
    return sum(status.reserved.nanos for status in real.governor.status())


def spent_nanos(real: Real) -> int:
    return sum(status.spent.nanos for status in real.governor.status())


@pytest.fixture(params=["sqlite", "redis"])
def real(request: pytest.FixtureRequest, tmp_path: Path, emulator_url: str) -> Iterator[Real]:
    if request.param == "sqlite":
        store = f"sqlite:///{tmp_path}/budget.db"
    else:
        store = f"{request.getfixturevalue('redis_url')}?prefix={request.getfixturevalue('redis_prefix')}"
    with real_gateway(tmp_path, emulator_url, POLICY, store) as served:
        yield served


def test_a_batch_is_reserved_then_each_result_settled_at_batch_prices(real: Real) -> None:
    client = real.openai()
    uploaded = client.files.create(file=("in.jsonl", jsonl(3)), purpose="batch")
    created = client.batches.with_raw_response.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    batch = created.parse()
    reserved = Decimal(created.headers["x-fiscus-batch-reserved-usd"])
    sheet = real.governor.catalogue.sheet(provider="openai", model="gpt-4o-mini", batch=True)
    assert reserved > 0 and reserved_nanos(real) == to_nanos(reserved)
    # The sum of each request's worst case at batch prices: its estimated input (with the policy's 20 % margin on
    # the count) and its 40-token cap.
    bodies = [orjson.loads(line)["body"] for line in jsonl(3).splitlines()]
    counted = [math.ceil(count_request_tokens(b, "openai_chat") * Decimal("1.2")) for b in bodies]
    worst = sum(sheet.worst_case(tokens, 40, cache_writes=False) for tokens in counted)
    assert to_nanos(reserved) == math.ceil(worst * 10**9)

    done = wait_for(client, batch.id, "completed")
    assert done.parse().status == "completed" and "x-fiscus-batch-cost-usd" in done.headers
    events = sorted(real.events(), key=lambda e: e.tags.get("custom_id", ""))
    assert [e.tags["custom_id"] for e in events] == ["r0", "r1", "r2"]
    lines = [orjson.loads(line) for line in client.files.content(done.parse().output_file_id).content.splitlines()]
    reported = {line["custom_id"]: line["response"]["body"]["usage"] for line in lines}
    catalogue = real.governor.catalogue
    for event in events:
        assert event.status is CallStatus.OK and event.batch and event.tags["batch"] == batch.id
        assert event.attribution.team == "growth" and event.attribution.agent == "support-bot"
        assert event.usage.output_tokens == reported[event.tags["custom_id"]]["completion_tokens"]
        at = event.timestamp
        batch_price = catalogue.sheet(provider="openai", model="gpt-4o-mini", at=at, batch=True).cost(event.usage)
        sync_price = catalogue.sheet(provider="openai", model="gpt-4o-mini", at=at).cost(event.usage)
        assert event.cost.total == batch_price.total > 0
        assert event.saved is not None and event.saved.batch == sync_price.total - batch_price.total > 0
        assert event.ungoverned_usd == sync_price.total
    total = sum((e.cost.total for e in events), Decimal(0))
    assert Decimal(done.headers["x-fiscus-batch-cost-usd"]) == total
    assert reserved_nanos(real) == 0 and spent_nanos(real) == sum(to_nanos(e.cost.total) for e in events)

    # Polled, listed and read again: nothing settled twice.
    wait_for(client, batch.id, "completed")
    assert [b.id for b in client.batches.list().data] == [batch.id]
    client.files.content(done.parse().output_file_id)
    assert len(real.events()) == 3 and spent_nanos(real) == sum(to_nanos(e.cost.total) for e in events)


def test_a_batch_that_does_not_fit_is_refused_and_holds_nothing(tmp_path: Path, emulator_url: str) -> None:
    with real_gateway(tmp_path, emulator_url, TIGHT, f"sqlite:///{tmp_path}/budget.db") as real:
        client = real.openai()
        uploaded = client.files.create(file=("in.jsonl", jsonl(5, model="gpt-4o", max_tokens=2000)), purpose="batch")
        with pytest.raises(openai.RateLimitError) as refused:
            client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
        error = refused.value.body
        assert isinstance(error, dict) and error["code"] == "budget_exceeded"
        assert "5 request(s) for gpt-4o do not fit" in error["message"]
        assert reserved_nanos(real) == 0 and spent_nanos(real) == 0
        (event,) = real.events()
        assert event.status is CallStatus.BLOCKED and event.cost.total == 0
        # The provider never saw the batch.
        assert client.batches.list().data == []


def test_expired_failed_and_cancelled_requests_release_their_share(real: Real) -> None:
    client = real.openai()
    file_id = client.files.create(file=("in.jsonl", jsonl(4)), purpose="batch").id
    mixed = client.batches.create(
        input_file_id=file_id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        extra_headers={
            "x-emulator-batch-expire": "1",
            "x-emulator-error-sequence": "200,400",
            "x-emulator-sequence-key": uuid.uuid4().hex,
        },
    )
    slow = client.batches.create(
        input_file_id=file_id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        extra_headers={"x-emulator-batch-delay-ms": "60000"},
    )
    assert client.batches.cancel(slow.id).status == "cancelling"
    assert wait_for(client, mixed.id, "expired").parse().status == "expired"
    assert wait_for(client, slow.id, "cancelled").parse().status == "cancelled"
    events = real.events()
    by_batch: dict[str, list[Any]] = {}
    for event in events:
        by_batch.setdefault(event.tags["batch"], []).append(event)
    outcomes = sorted((e.status.value, e.error or "") for e in by_batch[mixed.id])
    assert [status for status, _ in outcomes] == ["error", "error", "ok", "ok"]
    assert any("batch_expired" in why for _, why in outcomes) and any(why.startswith("400") for _, why in outcomes)
    assert all(e.status is CallStatus.ERROR and e.cost.total == 0 for e in by_batch[slow.id])
    assert len(by_batch[slow.id]) == 4
    assert reserved_nanos(real) == 0
    assert spent_nanos(real) == sum(to_nanos(e.cost.total) for e in events)


def test_batches_and_files_belong_to_their_key(real: Real) -> None:
    client = real.openai()
    uploaded = client.files.create(file=("in.jsonl", jsonl(1)), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    other_secret, _ = real.keyring.create(agent="other-bot", team="ops", environment="test")
    other = openai.OpenAI(base_url=real.url + "/v1", api_key=other_secret, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        other.batches.retrieve(batch.id)
    with pytest.raises(openai.NotFoundError):
        other.files.content(uploaded.id)
    with pytest.raises(openai.NotFoundError):
        other.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert other.batches.list().data == []
    wait_for(client, batch.id, "completed")


def test_bad_batch_input_is_a_clear_error(real: Real) -> None:
    client = real.openai()
    body = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    streaming = orjson.dumps({"custom_id": "s", "method": "POST", "url": "/v1/chat/completions", "body": body})
    file_id = client.files.create(file=("s.jsonl", streaming), purpose="batch").id
    with pytest.raises(openai.BadRequestError, match="stream is not supported"):
        client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    unknown = client.files.create(file=("u.jsonl", jsonl(1, model="no-such-model")), purpose="batch").id
    with pytest.raises(openai.NotFoundError, match="not served"):
        client.batches.create(input_file_id=unknown, endpoint="/v1/chat/completions", completion_window="24h")
    with pytest.raises(openai.BadRequestError, match="endpoint"):
        client.batches.create(input_file_id=file_id, endpoint="/v1/embeddings", completion_window="24h")
    assert reserved_nanos(real) == 0 and real.events() == []


def test_a_responses_batch_is_priced_from_its_answers(real: Real) -> None:
    client = real.openai()
    body = {"model": "gpt-4o-mini", "input": "Summarise the ledger.", "max_output_tokens": 30}
    line = {"custom_id": "resp", "method": "POST", "url": "/v1/responses", "body": body}
    file_id = client.files.create(file=("r.jsonl", orjson.dumps(line)), purpose="batch").id
    batch = client.batches.create(input_file_id=file_id, endpoint="/v1/responses", completion_window="24h")
    done = wait_for(client, batch.id, "completed").parse()
    (answer,) = [orjson.loads(x) for x in client.files.content(done.output_file_id).content.splitlines()]
    (event,) = real.events()
    assert event.usage.output_tokens == answer["response"]["body"]["usage"]["output_tokens"] > 0
    sheet = real.governor.catalogue.sheet(provider="openai", model="gpt-4o-mini", at=event.timestamp, batch=True)
    assert event.cost.total == sheet.cost(event.usage).total and reserved_nanos(real) == 0
