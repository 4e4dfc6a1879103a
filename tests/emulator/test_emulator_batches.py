"""The emulated OpenAI Files + Batch and Anthropic Message Batches APIs, through the official SDKs."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from fiscus.emulator.config import ManualClock


def _jsonl(*bodies: dict[str, Any], url: str = "/v1/chat/completions") -> bytes:
    lines = [{"custom_id": f"r{i}", "method": "POST", "url": url, "body": body} for i, body in enumerate(bodies)]
    return b"\n".join(orjson.dumps(line) for line in lines) + b"\n"


def _chat(text: str, max_tokens: int = 50) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens}


def test_openai_batch_runs_each_request_and_writes_usage(oai: openai.OpenAI, clock: ManualClock, stats: Any) -> None:
    uploaded = oai.files.create(file=("in.jsonl", _jsonl(_chat("one"), _chat("two"))), purpose="batch")
    assert uploaded.object == "file" and uploaded.purpose == "batch" and uploaded.status == "processed"
    assert oai.files.retrieve(uploaded.id).bytes == uploaded.bytes
    assert oai.files.content(uploaded.id).content.startswith(b'{"custom_id":"r0"')
    batch = oai.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert batch.status == "validating" and batch.request_counts.total == 2
    assert oai.batches.retrieve(batch.id).status == "in_progress"
    assert stats()["output_tokens"] == 0  # nothing ran yet
    clock.advance(1.0)
    done = oai.batches.retrieve(batch.id)
    assert done.status == "completed" and done.completed_at is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (2, 0)
    assert done.output_file_id and done.error_file_id is None and done.model == "gpt-4o-mini"
    lines = [orjson.loads(line) for line in oai.files.content(done.output_file_id).content.splitlines()]
    assert [line["custom_id"] for line in lines] == ["r0", "r1"]
    assert all(line["response"]["status_code"] == 200 and line["error"] is None for line in lines)
    usage = [line["response"]["body"]["usage"] for line in lines]
    assert done.usage is not None and done.usage.input_tokens == sum(u["prompt_tokens"] for u in usage)
    assert done.usage.output_tokens == sum(u["completion_tokens"] for u in usage) == stats()["output_tokens"]
    assert [b.id for b in oai.batches.list().data] == [batch.id]


def test_openai_batch_expiry_errors_cancel_and_bad_input(oai: openai.OpenAI, clock: ManualClock) -> None:
    file_id = oai.files.create(file=("in.jsonl", _jsonl(_chat("a"), _chat("b"), _chat("c"))), purpose="batch").id
    expiring = oai.batches.create(
        input_file_id=file_id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        extra_headers={"x-emulator-batch-expire": "1", "x-emulator-error-sequence": "200,400"},
    )
    cancelled = oai.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    assert oai.batches.cancel(cancelled.id).status == "cancelling"
    clock.advance(1.0)
    expired = oai.batches.retrieve(expiring.id)
    assert expired.status == "expired" and (expired.request_counts.completed, expired.request_counts.failed) == (1, 2)
    errors = [orjson.loads(line) for line in oai.files.content(expired.error_file_id).content.splitlines()]
    assert errors[0]["response"]["status_code"] == 400
    assert errors[1]["response"] is None and errors[1]["error"]["code"] == "batch_expired"
    gone = oai.batches.retrieve(cancelled.id)
    assert gone.status == "cancelled" and gone.output_file_id is None and gone.request_counts.completed == 0
    bad = oai.files.create(
        file=("bad.jsonl", b'{"custom_id": "x", "url": "/v1/embeddings", "body": {}}\n'), purpose="batch"
    )
    failed = oai.batches.create(input_file_id=bad.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert failed.status == "failed" and failed.errors.data[0].code == "mismatched_endpoint"
    with pytest.raises(openai.NotFoundError):
        oai.batches.retrieve("batch_nope")
    with pytest.raises(openai.BadRequestError):
        oai.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="1h")  # type: ignore[arg-type]


def _params(text: str) -> dict[str, Any]:
    return {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": text}]}


def test_anthropic_message_batch_lifecycle(claude: anthropic.Anthropic, clock: ManualClock) -> None:
    batch = claude.messages.batches.create(
        requests=[{"custom_id": "a", "params": _params("first")}, {"custom_id": "b", "params": _params("second")}]
    )
    assert batch.type == "message_batch" and batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 2 and batch.results_url is None
    clock.advance(1.0)
    ended = claude.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.request_counts.succeeded == 2 and ended.ended_at
    results = {item.custom_id: item.result for item in claude.messages.batches.results(batch.id)}
    assert results["a"].type == "succeeded" and results["a"].message.usage.output_tokens > 0
    assert [b.id for b in claude.messages.batches.list().data] == [batch.id]


def test_anthropic_batch_cancel_expire_and_errors(claude: anthropic.Anthropic, clock: ManualClock) -> None:
    requests = [{"custom_id": c, "params": _params(c)} for c in "xyz"]
    cancelled = claude.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    assert claude.messages.batches.cancel(cancelled.id).processing_status == "canceling"
    mixed = claude.messages.batches.create(
        requests=requests,  # type: ignore[arg-type]
        extra_headers={"x-emulator-batch-expire": "1", "x-emulator-error-sequence": "200,529"},
    )
    clock.advance(1.0)
    assert claude.messages.batches.retrieve(cancelled.id).request_counts.canceled == 3
    kinds = {item.custom_id: item.result.type for item in claude.messages.batches.results(mixed.id)}
    assert kinds == {"x": "succeeded", "y": "errored", "z": "expired"}
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.batches.create(requests=[{"custom_id": "d", "params": _params("d")}] * 2)  # type: ignore[list-item]
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.batches.retrieve("msgbatch_nope")


def test_batch_calls_need_a_key(emulator_url: str) -> None:
    assert httpx.get(f"{emulator_url}/v1/batches").status_code == 401
    refused = httpx.get(f"{emulator_url}/v1/messages/batches", headers={"x-api-key": "k"})
    assert refused.status_code == 400 and "anthropic-version" in refused.json()["error"]["message"]


def test_a_batch_cancelled_part_way_keeps_the_answers_that_ran(
    oai: openai.OpenAI, claude: anthropic.Anthropic, clock: ManualClock
) -> None:
    part_way = {"x-emulator-batch-run-before-cancel": "2"}
    file_id = oai.files.create(file=("in.jsonl", _jsonl(*(_chat(t) for t in "abcd"))), purpose="batch").id
    batch = oai.batches.create(
        input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h", extra_headers=part_way
    )
    assert oai.batches.cancel(batch.id).status == "cancelling"
    stopped = oai.batches.retrieve(batch.id)
    assert stopped.status == "cancelled" and stopped.request_counts is not None
    assert (stopped.request_counts.total, stopped.request_counts.completed, stopped.request_counts.failed) == (4, 2, 0)
    assert stopped.output_file_id and stopped.error_file_id and stopped.usage is not None
    output = [orjson.loads(t) for t in oai.files.content(stopped.output_file_id).content.splitlines()]
    assert [line["custom_id"] for line in output] == ["r0", "r1"]
    assert sum(line["response"]["body"]["usage"]["completion_tokens"] for line in output) == stopped.usage.output_tokens
    errors = [orjson.loads(t) for t in oai.files.content(stopped.error_file_id).content.splitlines()]
    assert [(line["custom_id"], line["error"]["code"]) for line in errors] == [
        ("r2", "batch_cancelled"),
        ("r3", "batch_cancelled"),
    ]

    requests = [{"custom_id": c, "params": _params(c)} for c in "xyz"]
    claude_batch = claude.messages.batches.create(requests=requests, extra_headers=part_way)  # type: ignore[arg-type]
    assert claude.messages.batches.cancel(claude_batch.id).processing_status == "canceling"
    ended = claude.messages.batches.retrieve(claude_batch.id)
    assert ended.processing_status == "ended"
    assert (ended.request_counts.succeeded, ended.request_counts.canceled) == (2, 1)
    kinds = {item.custom_id: item.result.type for item in claude.messages.batches.results(claude_batch.id)}
    assert kinds == {"x": "succeeded", "y": "succeeded", "z": "canceled"}
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.batches.create(
            requests=requests,  # type: ignore[arg-type]
            extra_headers={"x-emulator-batch-run-before-cancel": "-1"},
        )
