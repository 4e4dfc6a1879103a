"""OpenAI Files and Batch: POST /v1/files (multipart, purpose=batch), GET /v1/files/{id}, GET
/v1/files/{id}/content, POST /v1/batches, GET /v1/batches/{id}, POST /v1/batches/{id}/cancel, GET /v1/batches.

An input file is JSON lines `{"custom_id", "method": "POST", "url", "body"}`, all for the batch's endpoint and
one model. A batch goes validating → in_progress → completed (expired when requests ran out of time, cancelling
→ cancelled when cancelled first, with the answers of the requests that had run; failed when its input is
invalid). The output file holds one line per answered request,
`{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error": null}`, the body with its
usage; the error file the requests that failed, expired or were cancelled.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from fiscus.emulator import openai_chat, openai_responses
from fiscus.emulator.batch_jobs import (
    DAY_S,
    BatchJob,
    LineResult,
    StoredFile,
    admit_batch_call,
    new_job,
    page,
    parse_multipart,
    run_job,
    usage_totals,
)
from fiscus.emulator.dialects import OPENAI, json_response
from fiscus.emulator.ids import new_id
from fiscus.emulator.state import EmulatorState

ENDPOINTS = {"/v1/chat/completions": openai_chat.chat_completions, "/v1/responses": openai_responses.responses}
_PURPOSES = ("batch", "assistants", "fine-tune", "vision", "user_data", "evals")
_EXPIRED = {
    "code": "batch_expired",
    "message": "This request could not be executed before the completion window expired.",
}
_CANCELLED = {"code": "batch_cancelled", "message": "This request was not executed because the batch was cancelled."}


def _state(request: Request) -> EmulatorState:
    return request.app.state.emulator  # type: ignore[no-any-return]


async def create_file(request: Request) -> Response:
    state = _state(request)
    refused = admit_batch_call(request, state, OPENAI, "openai.files")
    if refused is not None:
        return refused
    fields = parse_multipart(request.headers.get("content-type", ""), await request.body())
    if fields is None or "file" not in fields:
        return OPENAI.error(400, "Missing required parameter: 'file'.", param="file", code="missing_required_parameter")
    purpose = fields.get("purpose", (None, b""))[1].decode("utf-8", "replace")
    if purpose not in _PURPOSES:
        return OPENAI.error(400, f"Invalid value for 'purpose': {purpose!r}.", param="purpose", code="invalid_value")
    filename, data = fields["file"]
    stored = StoredFile(new_id("file-", 22), filename or "upload", purpose, data, int(time.time()))
    state.batches.files[stored.id] = stored
    return json_response(stored.as_json())


def _file(request: Request) -> StoredFile | Response:
    stored = _state(request).batches.files.get(request.path_params["file_id"])
    if stored is None:
        return OPENAI.error(404, f"No such File object: {request.path_params['file_id']}", param="id")
    return stored


async def retrieve_file(request: Request) -> Response:
    refused = admit_batch_call(request, _state(request), OPENAI, "openai.files")
    if refused is not None:
        return refused
    stored = _file(request)
    return stored if isinstance(stored, Response) else json_response(stored.as_json())


async def file_content(request: Request) -> Response:
    refused = admit_batch_call(request, _state(request), OPENAI, "openai.files")
    if refused is not None:
        return refused
    stored = _file(request)
    if isinstance(stored, Response):
        return stored
    return Response(stored.data, 200, media_type="application/octet-stream")


def _read_lines(data: bytes, endpoint: str) -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]]]:
    """(requests, errors) of an input file: each error names its line, as the batch's `errors.data`."""
    requests: list[tuple[str, dict[str, Any]]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    models: set[str] = set()

    def fail(line: int, code: str, message: str, param: str | None = None) -> None:
        errors.append({"code": code, "line": line, "message": message, "param": param})

    for number, text in enumerate(data.splitlines(), start=1):
        if not text.strip():
            continue
        try:
            item = orjson.loads(text)
        except orjson.JSONDecodeError:
            fail(number, "invalid_json_line", "This line is not parseable as valid JSON.")
            continue
        if not isinstance(item, dict) or not isinstance(item.get("body"), dict):
            fail(number, "missing_required_parameter", "Missing required parameter: 'body'.", "body")
            continue
        custom_id = item.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            fail(number, "missing_required_parameter", "Missing required parameter: 'custom_id'.", "custom_id")
        elif custom_id in seen:
            fail(number, "duplicate_custom_id", f"The custom_id {custom_id!r} is used more than once.", "custom_id")
        elif item.get("method", "POST") != "POST":
            fail(number, "invalid_method", "Only POST is supported.", "method")
        elif item.get("url") != endpoint:
            fail(number, "mismatched_endpoint", f"The url must match the batch's endpoint {endpoint}.", "url")
        else:
            seen.add(custom_id)
            models.add(str(item["body"].get("model")))
            requests.append((custom_id, item["body"]))
    if len(models) > 1:
        fail(0, "mismatched_model", "All requests of a batch must use the same model.", "body.model")
    if not requests and not errors:
        fail(0, "empty_file", "The input file holds no requests.")
    return requests, errors


async def create_batch(request: Request) -> Response:
    state = _state(request)
    refused = admit_batch_call(request, state, OPENAI, "openai.batches")
    if refused is not None:
        return refused
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return OPENAI.error(400, "We could not parse the JSON body of your request.")
    if not isinstance(body, dict):
        return OPENAI.error(400, "The request body must be a JSON object.")
    endpoint = body.get("endpoint")
    if endpoint not in ENDPOINTS:
        return OPENAI.error(400, f"Invalid value for 'endpoint': {endpoint!r}.", param="endpoint", code="invalid_value")
    if body.get("completion_window") != "24h":
        return OPENAI.error(
            400, "Invalid value for 'completion_window': only '24h' is supported.", param="completion_window"
        )
    stored = state.batches.files.get(str(body.get("input_file_id")))
    if stored is None:
        return OPENAI.error(404, f"No such File object: {body.get('input_file_id')}", param="input_file_id")
    requests, errors = _read_lines(stored.data, endpoint)
    extra = {
        "input_file_id": stored.id,
        "completion_window": "24h",
        "metadata": body.get("metadata"),
        "errors": errors,
        "model": str(requests[0][1].get("model")) if requests else None,
    }
    job = new_job(new_id("batch_", 24), endpoint, requests, request, state.config, extra)
    if errors:
        job.results, job.ended_at = [], job.created_at
    state.batches.jobs[job.id] = job
    return json_response(_batch_json(state, job, creating=True))


def _line(result: LineResult) -> dict[str, Any]:
    line: dict[str, Any] = {"id": new_id("batch_req_", 24), "custom_id": result.custom_id, "response": None}
    if result.outcome in ("succeeded", "errored"):
        request_id = f"req_{new_id('', 24)}"
        line["response"] = {"status_code": result.status, "request_id": request_id, "body": result.body}
        line["error"] = None
    else:
        line["error"] = _EXPIRED if result.outcome == "expired" else _CANCELLED
    return line


def _outputs(state: EmulatorState, job: BatchJob) -> None:
    """Write the job's output and error files, once, when it has ended."""
    if job.results is None or "output_file_id" in job.extra:
        return
    lines = {"output": [], "error": []}  # type: dict[str, list[bytes]]
    for result in job.results:
        lines["output" if result.outcome == "succeeded" else "error"].append(orjson.dumps(_line(result)))
    for kind, written in lines.items():
        file_id = None
        if written:
            stored = StoredFile(
                new_id("file-", 22), f"batch_{job.id}_{kind}.jsonl", f"batch_{kind}",
                b"\n".join(written) + b"\n", int(time.time()),
            )  # fmt: skip
            state.batches.files[stored.id] = stored
            file_id = stored.id
        job.extra[f"{kind}_file_id"] = file_id


def _status(job: BatchJob) -> str:
    if job.extra["errors"]:
        return "failed"
    if job.results is None:
        return "cancelling" if job.cancelled_at is not None else "in_progress"
    if job.cancelled_at is not None:
        return "cancelled"
    return "expired" if any(r.outcome == "expired" for r in job.results) else "completed"


def _batch_json(state: EmulatorState, job: BatchJob, *, creating: bool = False) -> dict[str, Any]:
    _outputs(state, job)
    status = "validating" if creating and not job.extra["errors"] else _status(job)
    created, ended = int(job.created_at), int(job.ended_at) if job.ended_at else None
    results = job.results or []
    completed = sum(r.outcome == "succeeded" for r in results)
    failed = sum(r.outcome in ("errored", "expired") for r in results)
    usage = usage_totals(results)
    errors = job.extra["errors"]
    return {
        "id": job.id,
        "object": "batch",
        "endpoint": job.path,
        "model": job.extra["model"],
        "errors": {"object": "list", "data": errors} if errors else None,
        "input_file_id": job.extra["input_file_id"],
        "completion_window": "24h",
        "status": status,
        "output_file_id": job.extra.get("output_file_id"),
        "error_file_id": job.extra.get("error_file_id"),
        "created_at": created,
        "in_progress_at": None if status in ("validating", "failed") else created,
        "expires_at": created + DAY_S,
        "finalizing_at": ended if status in ("completed", "expired") else None,
        "completed_at": ended if status == "completed" else None,
        "failed_at": ended if status == "failed" else None,
        "expired_at": ended if status == "expired" else None,
        "cancelling_at": int(job.cancelled_at) if job.cancelled_at else None,
        "cancelled_at": ended if status == "cancelled" else None,
        "request_counts": {"total": len(job.requests), "completed": completed, "failed": failed},
        "usage": {
            "input_tokens": usage["input"],
            "input_tokens_details": {"cached_tokens": usage["cached"]},
            "output_tokens": usage["output"],
            "output_tokens_details": {"reasoning_tokens": usage["reasoning"]},
            "total_tokens": usage["input"] + usage["output"],
        },
        "metadata": job.extra["metadata"],
    }


async def _job(request: Request) -> BatchJob | Response:
    state = _state(request)
    job = state.batches.jobs.get(request.path_params["batch_id"])
    if job is None or job.path not in ENDPOINTS:
        return OPENAI.error(404, f"No batch found with id '{request.path_params['batch_id']}'.", param="batch_id")
    await run_job(request.app, job, ENDPOINTS, state.config.clock)  # type: ignore[arg-type]
    return job


async def retrieve_batch(request: Request) -> Response:
    refused = admit_batch_call(request, _state(request), OPENAI, "openai.batches")
    if refused is not None:
        return refused
    job = await _job(request)
    return job if isinstance(job, Response) else json_response(_batch_json(_state(request), job))


async def cancel_batch(request: Request) -> Response:
    state = _state(request)
    refused = admit_batch_call(request, state, OPENAI, "openai.batches")
    if refused is not None:
        return refused
    job = await _job(request)
    if isinstance(job, Response):
        return job
    if job.ended:
        return OPENAI.error(409, f"Cannot cancel a batch with status '{_status(job)}'.")
    job.cancelled_at = time.time()
    return json_response(_batch_json(state, job))


async def list_batches(request: Request) -> Response:
    state = _state(request)
    refused = admit_batch_call(request, state, OPENAI, "openai.batches")
    if refused is not None:
        return refused
    try:
        limit = max(1, min(100, int(request.query_params.get("limit", "20"))))
    except ValueError:
        return OPENAI.error(400, "Invalid value for 'limit': an integer expected.", param="limit")
    jobs = [job for job in state.batches.jobs.values() if job.path in ENDPOINTS]
    for job in jobs:
        await run_job(request.app, job, ENDPOINTS, state.config.clock)  # type: ignore[arg-type]
    shown, more = page(jobs, request.query_params.get("after"), limit, lambda job: job.id)
    data = [_batch_json(state, job) for job in shown]
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return json_response({"object": "list", "data": data, "first_id": first, "last_id": last, "has_more": more})
