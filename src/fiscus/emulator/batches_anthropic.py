"""Anthropic Message Batches: POST /v1/messages/batches `{requests: [{custom_id, params}]}`, GET
/v1/messages/batches/{id}, GET /v1/messages/batches/{id}/results (JSON lines), POST .../{id}/cancel, GET
/v1/messages/batches.

`processing_status` goes in_progress → ended (canceling in between when cancelled); `request_counts` keeps
every request as `processing` until the batch ends, then splits them into succeeded / errored / canceled /
expired. `results_url` is set once ended; each result line is `{"custom_id", "result": {"type": "succeeded",
"message": {...}}}` (or errored with the error, canceled, expired).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from fiscus.emulator import anthropic_messages
from fiscus.emulator.batch_jobs import (
    DAY_S,
    BatchJob,
    LineResult,
    admit_batch_call,
    new_job,
    page,
    run_job,
)
from fiscus.emulator.dialects import ANTHROPIC, json_response
from fiscus.emulator.ids import new_id
from fiscus.emulator.state import EmulatorState

PATH = "/v1/messages"
ENDPOINTS = {PATH: anthropic_messages.messages}
MAX_REQUESTS = 100_000


def _state(request: Request) -> EmulatorState:
    return request.app.state.emulator  # type: ignore[no-any-return]


def _rfc3339(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _requests(body: Any) -> list[tuple[str, dict[str, Any]]] | str:
    """The batch's (custom_id, params), or what is wrong with them (the API checks at creation)."""
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list) or not body["requests"]:
        return "requests: Field required"
    if len(body["requests"]) > MAX_REQUESTS:
        return f"requests: at most {MAX_REQUESTS} requests per batch"
    out: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for index, item in enumerate(body["requests"]):
        if not isinstance(item, dict) or not isinstance(item.get("params"), dict):
            return f"requests.{index}.params: Field required"
        custom_id = item.get("custom_id")
        if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= 64:
            return f"requests.{index}.custom_id: a string of 1 to 64 characters is required"
        if custom_id in seen:
            return f"requests.{index}.custom_id: duplicate custom_id {custom_id!r}"
        if item["params"].get("stream"):
            return f"requests.{index}.params.stream: streaming is not supported in a batch"
        seen.add(custom_id)
        out.append((custom_id, item["params"]))
    return out


async def create(request: Request) -> Response:
    state = _state(request)
    refused = admit_batch_call(request, state, ANTHROPIC, "anthropic.batches")
    if refused is not None:
        return refused
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return ANTHROPIC.error(400, "We could not parse the JSON body of your request.")
    requests = _requests(body)
    if isinstance(requests, str):
        return ANTHROPIC.error(400, requests)
    job = new_job(new_id("msgbatch_01", 22), PATH, requests, request, state.config)
    state.batches.jobs[job.id] = job
    return json_response(_batch_json(request, job))


def _batch_json(request: Request, job: BatchJob) -> dict[str, Any]:
    counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    if job.results is None:
        counts["processing"] = len(job.requests)
    else:
        for result in job.results:
            counts[result.outcome] += 1
    status = "ended" if job.ended else "canceling" if job.cancelled_at is not None else "in_progress"
    base = str(request.base_url).rstrip("/")
    return {
        "id": job.id,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": counts,
        "ended_at": _rfc3339(job.ended_at),
        "created_at": _rfc3339(job.created_at),
        "expires_at": _rfc3339(job.created_at + DAY_S),
        "archived_at": None,
        "cancel_initiated_at": _rfc3339(job.cancelled_at),
        "results_url": f"{base}/v1/messages/batches/{job.id}/results" if job.ended else None,
    }


async def _job(request: Request) -> BatchJob | Response:
    state = _state(request)
    job = state.batches.jobs.get(request.path_params["batch_id"])
    if job is None or job.path != PATH:
        return ANTHROPIC.error(404, f"message_batch {request.path_params['batch_id']} not found")
    await run_job(request.app, job, ENDPOINTS, state.config.clock)  # type: ignore[arg-type]
    return job


async def retrieve(request: Request) -> Response:
    refused = admit_batch_call(request, _state(request), ANTHROPIC, "anthropic.batches")
    if refused is not None:
        return refused
    job = await _job(request)
    return job if isinstance(job, Response) else json_response(_batch_json(request, job))


def _result(result: LineResult) -> dict[str, Any]:
    if result.outcome == "succeeded":
        return {"custom_id": result.custom_id, "result": {"type": "succeeded", "message": result.body}}
    if result.outcome == "errored":
        error = (result.body or {}).get("error") or {"type": "api_error", "message": "Internal server error"}
        return {
            "custom_id": result.custom_id,
            "result": {"type": "errored", "error": {"type": "error", "error": error}},
        }
    return {"custom_id": result.custom_id, "result": {"type": result.outcome}}


async def results(request: Request) -> Response:
    refused = admit_batch_call(request, _state(request), ANTHROPIC, "anthropic.batches")
    if refused is not None:
        return refused
    job = await _job(request)
    if isinstance(job, Response):
        return job
    if job.results is None:
        return ANTHROPIC.error(400, f"message_batch {job.id} has not ended: its results are not available yet")
    lines = b"".join(orjson.dumps(_result(result)) + b"\n" for result in job.results)
    return Response(lines, 200, media_type="application/x-jsonl")


async def cancel(request: Request) -> Response:
    refused = admit_batch_call(request, _state(request), ANTHROPIC, "anthropic.batches")
    if refused is not None:
        return refused
    job = await _job(request)
    if isinstance(job, Response):
        return job
    if not job.ended and job.cancelled_at is None:
        job.cancelled_at = time.time()
    return json_response(_batch_json(request, job))


async def list_batches(request: Request) -> Response:
    state = _state(request)
    refused = admit_batch_call(request, state, ANTHROPIC, "anthropic.batches")
    if refused is not None:
        return refused
    try:
        limit = max(1, min(1000, int(request.query_params.get("limit", "20"))))
    except ValueError:
        return ANTHROPIC.error(400, "limit: an integer is required")
    jobs = [job for job in state.batches.jobs.values() if job.path == PATH]
    for job in jobs:
        await run_job(request.app, job, ENDPOINTS, state.config.clock)  # type: ignore[arg-type]
    shown, more = page(jobs, request.query_params.get("after_id"), limit, lambda job: job.id)
    data = [_batch_json(request, job) for job in shown]
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return json_response({"data": data, "has_more": more, "first_id": first, "last_id": last})
