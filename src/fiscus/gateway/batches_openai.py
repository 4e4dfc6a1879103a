"""OpenAI Files + Batch through the gateway: /v1/files, /v1/files/{id}, /v1/files/{id}/content, /v1/batches,
/v1/batches/{id}, /v1/batches/{id}/cancel — on the first configured provider of kind `openai`.

Submitting reads the input file back from the provider, checks every request as its endpoint would and reserves
the batch's worst case at batch prices before the provider sees the batch; a batch that does not fit is refused
with a 429 in OpenAI's format. A poll that finds the batch ended (completed, expired, cancelled, failed) reads its
output and error files and settles every request (`batches_settle.settle_if_ended`).
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
from fiscus.batches.lines import BatchInputError, BatchLine, deferrable, openai_input
from fiscus.batches.records import BatchRecord
from fiscus.gateway.batches import (
    MAX_FILE_BYTES,
    BatchDoor,
    Caller,
    endpoint,
    json_body,
    log,
    passed,
    provider_json,
)
from fiscus.gateway.batches_admit import bad_input, hold, read_line, release
from fiscus.gateway.batches_settle import settle_if_ended
from fiscus.gateway.protocol import CHAT, RESPONSES, BadRequest, Protocol, error_body
from fiscus.gateway.responses import JSON
from fiscus.providers import ProviderError

ENDPOINTS: dict[str, Protocol] = {"/v1/chat/completions": CHAT, "/v1/responses": RESPONSES}


def _not_found(what: str, ident: str) -> BadRequest:
    return BadRequest(f"No {what} found with id '{ident}'.", status=404, code="not_found")


async def upload_file(door: BatchDoor, request: Request) -> Response:
    caller = await door.caller(request)
    body = await door.read_body(request, MAX_FILE_BYTES)
    provider = door.provider_of_kind("openai")
    answer = await door.upstream(provider, "POST", "/files", caller, body, request.headers.get("content-type"))
    if answer.ok:
        await asyncio.to_thread(door.store.own_file, str(provider_json(answer).get("id")), caller.key_id)
    return passed(answer)


async def _own_file(door: BatchDoor, caller: Caller, file_id: str) -> None:
    if await asyncio.to_thread(door.store.file_owner, file_id) != caller.key_id:
        raise _not_found("file", file_id)


async def retrieve_file(door: BatchDoor, request: Request) -> Response:
    caller = await door.caller(request)
    file_id = request.path_params["file_id"]
    await _own_file(door, caller, file_id)
    return passed(await door.upstream(door.provider_of_kind("openai"), "GET", f"/files/{file_id}", caller))


async def file_content(door: BatchDoor, request: Request) -> Response:
    caller = await door.caller(request)
    file_id = request.path_params["file_id"]
    await _own_file(door, caller, file_id)
    return passed(await door.upstream(door.provider_of_kind("openai"), "GET", f"/files/{file_id}/content", caller))


def _lines(door: BatchDoor, data: bytes, path: str, protocol: Protocol, provider: str) -> list[BatchLine]:
    """The input file's requests, each checked as its endpoint would check it, all for models of `provider`."""
    try:
        items = openai_input(data, path)
    except BatchInputError as exc:
        raise bad_input(exc) from None
    lines: list[BatchLine] = []
    for custom_id, body in items:
        line = read_line(protocol, custom_id, body)
        served_by = door.gateway.router.route(line.model, protocol)
        if served_by is None:
            raise BadRequest(
                f"The model `{line.model}` is not served by this gateway", status=404, code="model_not_found"
            )
        if served_by != provider:
            raise BadRequest(f"batch request {custom_id!r}: {line.model} is served by {served_by}, not {provider}")
        lines.append(line)
    return lines


async def create_batch(door: BatchDoor, request: Request) -> Response:
    caller = await door.caller(request)
    raw = await door.read_body(request, 1 << 20)
    body = json_body(raw)
    path = body.get("endpoint")
    protocol = ENDPOINTS.get(path) if isinstance(path, str) else None
    if protocol is None:
        raise BadRequest(f"endpoint must be one of {', '.join(ENDPOINTS)}", param="endpoint", code="invalid_value")
    file_id = str(body.get("input_file_id"))
    await _own_file(door, caller, file_id)
    provider = door.provider_of_kind("openai")
    content = await door.upstream(provider, "GET", f"/files/{file_id}/content", caller)
    if not content.ok:
        return passed(content)
    lines = _lines(door, content.body, str(path), protocol, provider)
    admitted = await arun(
        admit_steps(door.governor, provider, lines, caller.attribution, caller.priority, caller.overrides, "submitted"),
        door.governor,
    )
    if isinstance(admitted, Refused):
        refusal = error_body(CHAT, 429, admitted.message, code="budget_exceeded", kind="insufficient_quota")
        headers = {"retry-after": str(admitted.retry_after_s), "x-fiscus-budget": "exhausted"}
        return Response(refusal, 429, headers | {"x-fiscus-request-id": admitted.event_id}, media_type=JSON)
    try:
        answer = await door.upstream(provider, "POST", "/batches", caller, raw)
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
        str(batch["id"]), "openai", provider, str(path), caller.key_id, caller.attribution, caller.priority,
        time.time(), format(admitted.worst_case, "f"), admitted.groups,
    )  # fmt: skip
    await asyncio.to_thread(door.store.add, record)
    await hold(door.governor, admitted)
    headers = {"x-fiscus-batch-reserved-usd": record.worst_case_usd, "x-fiscus-budget": admitted.action}
    if deferrable(getattr(door.governor, "policy", None), caller.attribution):
        headers["x-fiscus-deferrable"] = "true"
    return passed(answer, headers)


async def retrieve_batch(door: BatchDoor, request: Request) -> Response:
    caller = await door.caller(request)
    batch_id = request.path_params["batch_id"]
    record = await door.owned(batch_id, caller)
    if record is None:
        raise _not_found("batch", batch_id)
    answer = await door.upstream(record.provider, "GET", f"/batches/{batch_id}", caller)
    if not answer.ok:
        return passed(answer)
    cost = await settle_if_ended(door, caller, record, provider_json(answer))
    return passed(answer, {"x-fiscus-batch-cost-usd": cost} if cost is not None else None)


async def cancel_batch(door: BatchDoor, request: Request) -> Response:
    caller = await door.caller(request)
    batch_id = request.path_params["batch_id"]
    record = await door.owned(batch_id, caller)
    if record is None:
        raise _not_found("batch", batch_id)
    return passed(await door.upstream(record.provider, "POST", f"/batches/{batch_id}/cancel", caller))


async def list_batches(door: BatchDoor, request: Request) -> Response:
    """The provider's list, showing only this key's batches (and settling those it finds ended)."""
    caller = await door.caller(request)
    query = f"?{request.url.query}" if request.url.query else ""
    answer = await door.upstream(door.provider_of_kind("openai"), "GET", f"/batches{query}", caller)
    if not answer.ok:
        return passed(answer)
    page = provider_json(answer)
    mine = []
    for batch in page.get("data") or []:
        record = await door.owned(str(batch.get("id")), caller)
        if record is not None:
            await settle_if_ended(door, caller, record, batch)
            mine.append(batch)
    page["data"] = mine
    page["first_id"], page["last_id"] = (mine[0]["id"], mine[-1]["id"]) if mine else (None, None)
    return passed(answer, body=orjson.dumps(page))


def routes(door: BatchDoor) -> list[Any]:
    from starlette.routing import Route

    def wrap(handler: Any, route: str) -> Any:
        return endpoint(door, handler, CHAT, route)

    get, post = ["GET"], ["POST"]
    return [
        Route("/v1/files", wrap(upload_file, "files"), methods=post),
        Route("/v1/files/{file_id}", wrap(retrieve_file, "files"), methods=get),
        Route("/v1/files/{file_id}/content", wrap(file_content, "files"), methods=get),
        Route("/v1/batches", wrap(create_batch, "batches"), methods=post),
        Route("/v1/batches", wrap(list_batches, "batches"), methods=get),
        Route("/v1/batches/{batch_id}", wrap(retrieve_batch, "batches"), methods=get),
        Route("/v1/batches/{batch_id}/cancel", wrap(cancel_batch, "batches"), methods=post),
    ]
