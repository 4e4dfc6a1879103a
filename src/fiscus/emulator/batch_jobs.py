"""What the emulated Batch APIs share: uploaded files, batch jobs, and running one batched request through the
emulator's own endpoint, as the provider runs it through its synchronous API at batch prices.

A job completes `batch_delay_ms` (config, or `x-emulator-batch-delay-ms` on the create call) after it was
created, on the emulator's clock: its requests run the first time the job is read after that, once. A job
cancelled before then runs none of them, unless `x-emulator-batch-run-before-cancel: N` says its first N had
already run when the cancel came: those have their results, the rest are canceled (as a provider stopping a
batch part-way reports it). `x-emulator-batch-expire: N` lets the last N requests expire unrun.
Other `x-emulator-*` headers of the create call steer every request of the job (output length, faults, ...).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from starlette.requests import Request
from starlette.responses import Response

from fiscus.emulator.config import EmulatorConfig

Endpoint = Callable[[Request], Awaitable[Response]]
Outcome = Literal["succeeded", "errored", "expired", "canceled"]

# Headers of the create call that every batched request carries on (the key, the API version, steering).
_CARRIED = (b"authorization", b"x-api-key", b"anthropic-version", b"anthropic-beta")
_BATCH_STEERING = (b"x-emulator-batch-delay-ms", b"x-emulator-batch-expire", b"x-emulator-batch-run-before-cancel")
_STEERING_NAMES = "x-emulator-batch-delay-ms / -expire / -run-before-cancel"
DAY_S = 24 * 3600


@dataclass(slots=True)
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "expires_at": None,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }


@dataclass(slots=True)
class LineResult:
    custom_id: str
    outcome: Outcome
    status: int | None = None  # the HTTP status the request got; None when it never ran
    body: dict[str, Any] | None = None  # the answer (or error) body


@dataclass(slots=True)
class BatchJob:
    id: str
    path: str  # the endpoint every request goes to, e.g. /v1/chat/completions
    requests: list[tuple[str, dict[str, Any]]]  # (custom_id, body)
    headers: list[tuple[bytes, bytes]]
    created_at: float  # epoch seconds
    ready_at: float  # on the emulator's clock
    expire: int = 0
    run_before_cancel: int = 0  # requests that had run when a cancel came
    extra: dict[str, Any] = field(default_factory=dict)  # the provider's own fields (input file, metadata, ...)
    cancelled_at: float | None = None  # epoch seconds
    ended_at: float | None = None
    results: list[LineResult] | None = None

    @property
    def ended(self) -> bool:
        return self.results is not None


class BatchBook:
    """Files and jobs of one emulator instance, in creation order."""

    def __init__(self) -> None:
        self.files: dict[str, StoredFile] = {}
        self.jobs: dict[str, BatchJob] = {}

    def clear(self) -> None:
        self.files.clear()
        self.jobs.clear()


def carried_headers(request: Request) -> list[tuple[bytes, bytes]]:
    return [
        (name, value)
        for name, value in request.headers.raw
        if name in _CARRIED or (name.startswith(b"x-emulator-") and name not in _BATCH_STEERING)
    ]


@dataclass(frozen=True, slots=True)
class BatchSteering:
    delay_s: float
    expire: int = 0
    run_before_cancel: int = 0


def batch_steering(request: Request, config: EmulatorConfig) -> BatchSteering | str:
    """How a new job runs, from its create call's headers, or the problem with one of them."""
    headers = request.headers
    try:
        delay_ms = float(headers.get("x-emulator-batch-delay-ms", config.batch_delay_ms))
        expire = int(headers.get("x-emulator-batch-expire", 0))
        run_before_cancel = int(headers.get("x-emulator-batch-run-before-cancel", 0))
    except ValueError:
        return f"{_STEERING_NAMES}: a number expected"
    if delay_ms < 0 or expire < 0 or run_before_cancel < 0:
        return f"{_STEERING_NAMES}: must not be negative"
    return BatchSteering(delay_ms / 1000, expire, run_before_cancel)


def new_job(
    job_id: str,
    path: str,
    requests: list[tuple[str, dict[str, Any]]],
    request: Request,
    config: EmulatorConfig,
    extra: dict[str, Any] | None = None,
) -> BatchJob:
    """A job created now by `request` (its steering already checked by `admit_batch_call`)."""
    steering = batch_steering(request, config)
    assert isinstance(steering, BatchSteering)
    return BatchJob(
        job_id, path, requests, carried_headers(request), time.time(), config.clock() + steering.delay_s,
        min(steering.expire, len(requests)), min(steering.run_before_cancel, len(requests)), extra or {},
    )  # fmt: skip


async def run_job(app: Any, job: BatchJob, endpoints: dict[str, Endpoint], clock: Callable[[], float]) -> None:
    """Run the job's requests if it is due (or mark them cancelled); at most once."""
    if job.results is not None:
        return
    if job.cancelled_at is None and clock() < job.ready_at:
        return
    results: list[LineResult] = []
    runnable = len(job.requests) - job.expire
    if job.cancelled_at is not None:  # only those that ran before the cancel came
        runnable = min(runnable, job.run_before_cancel)
    for index, (custom_id, body) in enumerate(job.requests):
        if index >= runnable and job.cancelled_at is not None:
            results.append(LineResult(custom_id, "canceled"))
        elif index >= runnable:
            results.append(LineResult(custom_id, "expired"))
        else:
            status, answer = await _run_one(app, endpoints[job.path], job.path, job.headers, body)
            results.append(LineResult(custom_id, "succeeded" if status == 200 else "errored", status, answer))
    job.results = results
    job.ended_at = time.time()


async def _run_one(
    app: Any, endpoint: Endpoint, path: str, headers: list[tuple[bytes, bytes]], body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """One batched request through the emulator's own endpoint, in process (no socket)."""
    raw = orjson.dumps(body)
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "scheme": "http",
        "server": ("emulator", 80),
        "headers": [*headers, (b"content-type", b"application/json"), (b"content-length", b"%d" % len(raw))],
        "app": app,
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    try:
        response = await endpoint(Request(scope, receive))
    except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:  # as the endpoints' own 400
        return 400, {"error": {"type": "invalid_request_error", "message": f"Invalid request body: {exc}"}}
    app.state.emulator.stats.by_status[response.status_code] += 1
    try:
        answer = orjson.loads(response.body)
    except orjson.JSONDecodeError:  # a streamed answer cannot be batched
        answer = {"error": {"message": "stream is not supported in a batch"}}
        return 400, answer
    return response.status_code, answer if isinstance(answer, dict) else {"value": answer}


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]] | None:
    """The fields of a multipart/form-data body: name → (filename, data); None when it is not one."""
    marker = "boundary="
    if not content_type.startswith("multipart/form-data") or marker not in content_type:
        return None
    boundary = content_type.split(marker, 1)[1].split(";", 1)[0].strip().strip('"').encode()
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in body.split(b"--" + boundary)[1:]:
        if part.startswith(b"--"):
            break
        head, sep, data = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        name, filename = None, None
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if line.lower().startswith("content-disposition:"):
                for item in line.split(";")[1:]:
                    key, _, value = item.strip().partition("=")
                    if key == "name":
                        name = value.strip('"')
                    elif key == "filename":
                        filename = value.strip('"')
        if name is not None:
            fields[name] = (filename, data.removesuffix(b"\r\n"))
    return fields


def page(items: list[Any], after: str | None, limit: int, key: Callable[[Any], str]) -> tuple[list[Any], bool]:
    """Newest first, after the item with id `after`: (this page, whether more follow)."""
    ordered = list(reversed(items))
    if after is not None:
        ids = [key(item) for item in ordered]
        ordered = ordered[ids.index(after) + 1 :] if after in ids else []
    return ordered[:limit], len(ordered) > limit


def usage_totals(results: list[LineResult]) -> dict[str, int]:
    """Input, cached, output and reasoning tokens over the answered requests (Chat, Responses or Messages usage)."""
    totals = {"input": 0, "cached": 0, "output": 0, "reasoning": 0}
    for result in results:
        usage = (result.body or {}).get("usage") if result.outcome == "succeeded" else None
        if not isinstance(usage, dict):
            continue
        totals["input"] += int(usage.get("prompt_tokens", usage.get("input_tokens", 0)))
        details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
        totals["cached"] += int(details.get("cached_tokens", 0))
        totals["output"] += int(usage.get("completion_tokens", usage.get("output_tokens", 0)))
        out_details = usage.get("completion_tokens_details") or usage.get("output_tokens_details") or {}
        totals["reasoning"] += int(out_details.get("reasoning_tokens", 0))
    return totals


def admit_batch_call(request: Request, state: Any, dialect: Any, endpoint: str) -> Response | None:
    """Count the call and check its key (and Anthropic's version header, and the steering); a Response refuses."""
    from fiscus.emulator.steering import SteeringError, resolve

    state.stats.requests += 1
    state.stats.by_endpoint[endpoint] += 1
    key = dialect.api_key(request)
    if key is None:
        return dialect.missing_key()
    if state.config.api_keys is not None and key not in state.config.api_keys:
        return dialect.bad_key(key)
    if dialect.name == "anthropic" and not request.headers.get("anthropic-version"):
        return dialect.error(400, "anthropic-version: header is required")
    try:
        resolve(state.config, carried_headers(request))
    except SteeringError as exc:
        return dialect.error(400, str(exc))
    steering = batch_steering(request, state.config)
    return dialect.error(400, steering) if isinstance(steering, str) else None
