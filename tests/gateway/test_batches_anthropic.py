"""Anthropic Message Batches through the real gateway with the official client: reserved at batch prices on
submit (one group per model), each result its own event at the catalogue's batch price when the results are
fetched (through the gateway's results_url) or a poll sees the batch ended, never twice; refused in Anthropic's
format when it does not fit; cancelled requests release their share."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from fiscus.events.cost_event import CallStatus
from fiscus.money import to_nanos
from tests.gateway.conftest import Real, real_gateway
from tests.gateway.test_batches_openai import POLICY, TIGHT, reserved_nanos, spent_nanos


def params(text: str, model: str = "claude-haiku-4-5", max_tokens: int = 64) -> dict[str, Any]:
    return {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": text}]}


def wait_ended(client: anthropic.Anthropic, batch_id: str) -> Any:
    deadline = time.monotonic() + 10
    while True:
        raw = client.messages.batches.with_raw_response.retrieve(batch_id)
        if raw.parse().processing_status == "ended" or time.monotonic() > deadline:
            return raw
        time.sleep(0.1)


@pytest.fixture
def real(tmp_path: Path, emulator_url: str) -> Iterator[Real]:
    with real_gateway(tmp_path, emulator_url, POLICY, f"sqlite:///{tmp_path}/budget.db") as served:
        yield served


def test_results_settle_each_request_once_at_batch_prices(real: Real) -> None:
    client = real.anthropic()
    requests = [
        {"custom_id": "h1", "params": params("first")},
        {"custom_id": "h2", "params": params("second")},
        {"custom_id": "s1", "params": params("third", model="claude-sonnet-4-6")},
    ]
    created = client.messages.batches.with_raw_response.create(requests=requests)  # type: ignore[arg-type]
    batch = created.parse()
    reserved = Decimal(created.headers["x-fiscus-batch-reserved-usd"])
    assert batch.processing_status == "in_progress" and reserved_nanos(real) == to_nanos(reserved) > 0
    while client.messages.batches.retrieve(batch.id).processing_status != "ended":
        pass  # each poll goes through the gateway; the first one that sees it ended settles it
    assert (
        client.messages.batches.retrieve(batch.id).results_url == f"{real.url}/v1/messages/batches/{batch.id}/results"
    )
    results = {item.custom_id: item.result for item in client.messages.batches.results(batch.id)}
    assert set(results) == {"h1", "h2", "s1"} and all(r.type == "succeeded" for r in results.values())
    events = {e.tags["custom_id"]: e for e in real.events()}
    assert set(events) == {"h1", "h2", "s1"}
    catalogue = real.governor.catalogue
    for custom_id, event in events.items():
        model = "claude-sonnet-4-6" if custom_id == "s1" else "claude-haiku-4-5"
        message = results[custom_id].message  # type: ignore[union-attr]
        assert event.requested_model == model and event.batch and event.tags["batch"] == batch.id
        assert (event.usage.input_tokens, event.usage.output_tokens) == (
            message.usage.input_tokens,
            message.usage.output_tokens,
        )
        batch_price = catalogue.sheet(provider="anthropic", model=model, at=event.timestamp, batch=True)
        sync_price = catalogue.sheet(provider="anthropic", model=model, at=event.timestamp)
        assert event.cost.total == batch_price.cost(event.usage).total > 0
        assert event.saved is not None and event.saved.batch == sync_price.cost(event.usage).total - event.cost.total
        assert event.saved.batch > 0 and event.attribution.team == "growth"
    assert reserved_nanos(real) == 0
    assert spent_nanos(real) == sum(to_nanos(e.cost.total) for e in events.values())
    list(client.messages.batches.results(batch.id))  # fetched again: nothing new
    assert [b.id for b in client.messages.batches.list().data] == [batch.id]
    assert len(real.events()) == 3


def test_results_fetched_first_settle_too(real: Real) -> None:
    client = real.anthropic()
    batch = client.messages.batches.create(requests=[{"custom_id": "only", "params": params("x")}])  # type: ignore[list-item]
    time.sleep(0.5)  # ended at the provider; nobody has polled through the gateway yet
    # The results URL read straight away (the SDK's results() retrieves the batch first, which would settle it).
    headers = {"x-api-key": real.key, "anthropic-version": "2023-06-01"}
    raw = httpx.get(f"{real.url}/v1/messages/batches/{batch.id}/results", headers=headers)
    assert raw.status_code == 200 and Decimal(raw.headers["x-fiscus-batch-cost-usd"]) > 0
    (event,) = real.events()
    assert event.status is CallStatus.OK and event.tags["custom_id"] == "only" and reserved_nanos(real) == 0


def test_a_cancelled_batch_releases_everything(real: Real) -> None:
    client = real.anthropic()
    requests = [{"custom_id": c, "params": params(c)} for c in "abc"]
    batch = client.messages.batches.create(
        requests=requests,  # type: ignore[arg-type]
        extra_headers={"x-emulator-batch-delay-ms": "60000"},
    )
    assert reserved_nanos(real) > 0
    assert client.messages.batches.cancel(batch.id).processing_status == "canceling"
    ended = wait_ended(client, batch.id).parse()
    assert ended.request_counts.canceled == 3
    events = real.events()
    assert len(events) == 3 and all(e.status is CallStatus.ERROR and e.cost.total == 0 for e in events)
    assert all("canceled" in (e.error or "") for e in events)
    assert reserved_nanos(real) == 0 and spent_nanos(real) == 0


def test_a_batch_that_does_not_fit_is_refused_in_anthropic_format(tmp_path: Path, emulator_url: str) -> None:
    with real_gateway(tmp_path, emulator_url, TIGHT, f"sqlite:///{tmp_path}/budget.db") as real:
        client = real.anthropic()
        requests = [{"custom_id": str(i), "params": params("x", "claude-opus-4-6", 4000)} for i in range(3)]
        with pytest.raises(anthropic.RateLimitError) as refused:
            client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
        body = refused.value.body
        assert isinstance(body, dict) and body["type"] == "error" and "do not fit" in body["error"]["message"]
        assert reserved_nanos(real) == 0 and client.messages.batches.list().data == []
        (event,) = real.events()
        assert event.status is CallStatus.BLOCKED


def test_bad_batches_are_clear_errors(real: Real) -> None:
    client = real.anthropic()
    with pytest.raises(anthropic.BadRequestError, match="custom_id"):
        client.messages.batches.create(requests=[{"custom_id": "d", "params": params("d")}] * 2)  # type: ignore[list-item]
    with pytest.raises(anthropic.BadRequestError, match=r"max_tokens|messages"):
        client.messages.batches.create(requests=[{"custom_id": "m", "params": {"model": "claude-haiku-4-5"}}])  # type: ignore[list-item,typeddict-item]
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve("msgbatch_unknown")
    assert reserved_nanos(real) == 0 and real.events() == []
