"""Anthropic Message Batches through the gateway: /v1/messages/batches, /v1/messages/batches/{id}, .../results,
.../cancel — on the provider that serves the batch's models.

Submitting checks every request's `params` as /v1/messages would and reserves the batch's worst case at batch
prices; a batch that does not fit is refused with a 429 in Anthropic's format. `results_url` points back at the
gateway. A poll that finds the batch ended, or a fetch of its results, settles every request
(`batches_settle.settle_if_ended`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from fiscus.batches.admit import Refused, admit_steps
from fiscus.batches.drive import arun
from fiscus.batches.lines import BatchInputError, BatchLine, anthropic_input, deferrable
from fiscus.batches.records import BatchRecord
from fiscus.batches.results import json_lines
from fiscus.gateway.batches import BatchDoor, Caller, endpoint, json_body, log, passed, provider_json
from fiscus.gateway.batches_admit import bad_input, hold, read_line, release
from fiscus.gateway.batches_settle import settle_if_ended, settle_read
from fiscus.gateway.protocol import MESSAGES, BadRequest, error_body
from fiscus.gateway.responses import JSON
from fiscus.providers import ProviderError

MAX_SUBMIT_BYTES = 256 << 20  # Anthropic's limit for one batch


def _not_found(batch_id: str) -> BadRequest:
    return BadRequest(f"message_batch {batch_id} not found", status=404)


def _lines(door: BatchDoor, body: dict[str, Any]) -> tuple[str, list[BatchLine]]:
    """(provider, requests): every request checked as /v1/messages would check it, all served by one provider."""
    try:
        items = anthropic_input(body.get("requests"))
    except BatchInputError as exc:
        raise bad_input(exc) from None
    lines: list[BatchLine] = []
    provider: str | None = None
    for index, (custom_id, params) in enumerate(items):
        line = read_line(MESSAGES, custom_id, params)
        served_by = door.gateway.router.route(line.model, MESSAGES)
        if served_by is None:
            raise BadRequest(f"requests.{index}.params.model: {line.model} is not served by this gateway", status=404)
        if provider is not None and served_by != provider:
            raise BadRequest(f"requests.{index}: {line.model} is served by {served_by}; a batch goes to one provider")
        provider = served_by
        lines.append(line)
    assert provider is not None
    return provider, lines


def _shown(request: Request, batch: dict[str, Any]) -> dict[str, Any]:
    """The batch as the client sees it: its results at the gateway, not at the provider."""
    if batch.get("results_url"):
        base = str(request.base_url).rstrip("/")
        batch["results_url"] = f"{base}/v1/messages/batches/{batch['id']}/results"
    return batch


async def create(door: BatchDoor, request: Request) -> Response:
    caller = await door.caller(request)
    raw = await door.read_body(request, MAX_SUBMIT_BYTES)
    provider, lines = _lines(door, json_body(raw))
    admitted = await arun(
        admit_steps(door.governor, provider, lines, caller.attribution, caller.priority, caller.overrides, "submitted"),
        door.governor,
    )
    if isinstance(admitted, Refused):
        refusal = error_body(MESSAGES, 429, admitted.message)
        headers = {"retry-after": str(admitted.retry_after_s), "x-fiscus-budget": "exhausted"}
        return Response(refusal, 429, headers | {"x-fiscus-request-id": admitted.event_id}, media_type=JSON)
    try:
        answer = await door.upstream(provider, "POST", "/messages/batches", caller, raw)
    except BaseException:
        await release(door.governor, admitted.admissions)
        raise
    if not answer.ok:
        await release(door.governor, admitted.admissions)
        return passed(answer)
    try:
        batch = provider_json(answer)
        batch["id"]
    except (ProviderError, KeyError):
        log.error("provider accepted a batch without naming it: its results cannot be settled")
        await release(door.governor, admitted.admissions)
        raise
    record = BatchRecord(
        str(batch["id"]), "anthropic", provider, "/v1/messages", caller.key_id, caller.attribution, caller.priority,
        time.time(), format(admitted.worst_case, "f"), admitted.groups,
    )  # fmt: skip
    await asyncio.to_thread(door.store.add, record)
    await hold(door.governor, admitted)
    headers = {"x-fiscus-batch-reserved-usd": record.worst_case_usd, "x-fiscus-budget": admitted.action}
    if deferrable(getattr(door.governor, "policy", None), caller.attribution):
        headers["x-fiscus-deferrable"] = "true"
    return passed(answer, headers, orjson.dumps(_shown(request, batch)))


async def _owned(door: BatchDoor, request: Request, caller: Caller) -> BatchRecord:
    batch_id = request.path_params["batch_id"]
    record = await door.owned(batch_id, caller)
    if record is None:
        raise _not_found(batch_id)
    return record


async def retrieve(door: BatchDoor, request: Request) -> Response:
    caller = await door.caller(request)
    record = await _owned(door, request, caller)
    answer = await door.upstream(record.provider, "GET", f"/messages/batches/{record.id}", caller)
    if not answer.ok:
        return passed(answer)
    batch = provider_json(answer)
    cost = await settle_if_ended(door, caller, record, batch)
    headers = {"x-fiscus-batch-cost-usd": cost} if cost is not None else None
    return passed(answer, headers, orjson.dumps(_shown(request, batch)))


async def results(door: BatchDoor, request: Request) -> Response:
    caller = await door.caller(request)
    record = await _owned(door, request, caller)
    answer = await door.upstream(record.provider, "GET", f"/messages/batches/{record.id}/results", caller)
    cost = None
    if answer.ok and not record.settled:

        async def work() -> str | None:
            # Results are readable only once the batch has ended.
            ended = {"id": record.id, "processing_status": "ended"}
            return await settle_read(door, record, ended, [json_lines(answer.body)])

        cost = await door.settle(record, work)
    return passed(answer, {"x-fiscus-batch-cost-usd": cost} if cost is not None else None)


async def cancel(door: BatchDoor, request: Request) -> Response:
    caller = await door.caller(request)
    record = await _owned(door, request, caller)
    answer = await door.upstream(record.provider, "POST", f"/messages/batches/{record.id}/cancel", caller)
    if not answer.ok:
        return passed(answer)
    return passed(answer, body=orjson.dumps(_shown(request, provider_json(answer))))


async def list_batches(door: BatchDoor, request: Request) -> Response:
    """The provider's list (of the first Anthropic provider), showing only this key's batches."""
    caller = await door.caller(request)
    query = f"?{request.url.query}" if request.url.query else ""
    answer = await door.upstream(door.provider_of_kind("anthropic"), "GET", f"/messages/batches{query}", caller)
    if not answer.ok:
        return passed(answer)
    page = provider_json(answer)
    mine = []
    for batch in page.get("data") or []:
        record = await door.owned(str(batch.get("id")), caller)
        if record is not None:
            await settle_if_ended(door, caller, record, batch)
            mine.append(_shown(request, batch))
    page["data"] = mine
    page["first_id"], page["last_id"] = (mine[0]["id"], mine[-1]["id"]) if mine else (None, None)
    return passed(answer, body=orjson.dumps(page))


def routes(door: BatchDoor) -> list[Any]:
    from starlette.routing import Route

    def wrap(handler: Any) -> Any:
        return endpoint(door, handler, MESSAGES, "message_batches")

    get, post = ["GET"], ["POST"]
    return [
        Route("/v1/messages/batches", wrap(create), methods=post),
        Route("/v1/messages/batches", wrap(list_batches), methods=get),
        Route("/v1/messages/batches/{batch_id}", wrap(retrieve), methods=get),
        Route("/v1/messages/batches/{batch_id}/results", wrap(results), methods=get),
        Route("/v1/messages/batches/{batch_id}/cancel", wrap(cancel), methods=post),
    ]
