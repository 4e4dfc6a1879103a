"""The batch door: OpenAI Files + Batch and Anthropic Message Batches, passed through to the provider with the
caller's key, attribution and budgets (see `batches_admit` for the reservation, `batches_settle` for the results).

A batch belongs to the virtual key that submitted it: another key is told it does not exist, and so are files
uploaded with another key. Every answer is the provider's own, in its format; fiscus adds `x-fiscus-*` headers
(`x-fiscus-batch-reserved-usd` on submit, `x-fiscus-batch-cost-usd` on the poll that settled it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from fiscus.attribution import Attribution
from fiscus.batches.records import BatchRecord
from fiscus.batches.store import BatchStore
from fiscus.errors import FiscusError, StoreError
from fiscus.gateway.auth import client_key
from fiscus.gateway.protocol import BadRequest, Protocol, error_body
from fiscus.gateway.responses import JSON
from fiscus.providers import ProviderError
from fiscus.providers.messages import UpstreamResponse

log = logging.getLogger("fiscus.gateway")

_FORWARD_PREFIXES = ("anthropic-beta", "anthropic-version", "openai-beta", "x-emulator-")
MAX_FILE_BYTES = 200 << 20  # OpenAI's limit for a batch input file
INLINE_REQUESTS = 2_000  # a batch up to this size is settled within the poll that finds it ended


@dataclass(frozen=True, slots=True)
class Caller:
    key_id: str
    attribution: Attribution
    priority: str
    overrides: tuple[tuple[str, str], ...]
    forwarded: dict[str, str]  # client headers passed on to the provider (versions, betas, emulator steering)


class BatchDoor:
    """What the batch endpoints share: the gateway's keys, governor, routes and upstream, and the batch store."""

    def __init__(self, gateway: Any, store: BatchStore, *, inline_requests: int | None = None) -> None:
        self.gateway = gateway
        self.governor = gateway.governor
        self.store = store
        self.inline_requests = INLINE_REQUESTS if inline_requests is None else inline_requests
        self._settling: dict[str, asyncio.Task[str | None]] = {}

    async def settle(self, record: BatchRecord, work: Callable[[], Awaitable[str | None]]) -> str | None:
        """Run `work` (which settles `record`) within this call for a batch of up to `inline_requests` requests,
        its cost as the answer; a larger one settles in the background (once at a time per batch in this
        process), so the poll that found it ended answers at once. Cut short (the gateway stopped), the next poll
        or the gateway's own settles it again: settling is idempotent."""
        if record.request_count <= self.inline_requests:
            return await work()
        if record.id not in self._settling:
            task = asyncio.get_running_loop().create_task(work(), name=f"fiscus-settle-{record.id}")
            self._settling[record.id] = task
            task.add_done_callback(lambda done: self._settled(record.id, done))
        return None

    def _settled(self, batch_id: str, task: asyncio.Task[str | None]) -> None:
        self._settling.pop(batch_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("settling batch %s failed: %s (settled on a later poll)", batch_id, task.exception())

    async def caller(self, request: Request) -> Caller:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.headers.raw}
        key = client_key(headers)
        if key is None:
            raise BadRequest(
                "missing API key: send a fiscus virtual key as a Bearer token or x-api-key",
                status=401,
                code="invalid_api_key",
            )
        vkey = await self.gateway.keys.averify(key)
        if vkey is None:
            raise BadRequest("invalid or revoked API key", status=401, code="invalid_api_key")
        attribution, priority, _ = self.gateway.attribute(vkey, headers)
        overrides = self.gateway.overrides
        granted = await overrides.agrants_for(vkey.id) if overrides is not None else ()
        forwarded = {k: v for k, v in headers.items() if k.startswith(_FORWARD_PREFIXES)}
        return Caller(vkey.id, attribution, priority, granted, forwarded)

    def provider_of_kind(self, kind: str) -> str:
        """The first configured provider of `kind`: where OpenAI files and batches go."""
        for name, provider in self.gateway.config.providers.items():
            if provider.kind == kind:
                return str(name)
        raise BadRequest(f"no {kind} provider is configured on this gateway", status=404, code="not_found")

    async def upstream(
        self, provider: str, method: str, path: str, caller: Caller, body: bytes = b"", content_type: str | None = None
    ) -> UpstreamResponse:
        return await self.gateway.upstream.passthrough(  # type: ignore[no-any-return]
            provider, method, path, body, content_type=content_type, headers=caller.forwarded
        )

    async def owned(self, batch_id: str, caller: Caller) -> BatchRecord | None:
        record = await asyncio.to_thread(self.store.get, batch_id)
        return record if record is not None and record.key_id == caller.key_id else None

    async def read_body(self, request: Request, limit: int) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise BadRequest(f"request body over {limit} bytes", status=413, code="request_too_large")
        parts, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BadRequest(f"request body over {limit} bytes", status=413, code="request_too_large")
            parts.append(chunk)
        return b"".join(parts)


def json_body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest(f"request body must be a JSON object, got {type(body).__name__}")
    return body


def provider_json(answer: UpstreamResponse) -> dict[str, Any]:
    """A 2xx answer's JSON object (with an `id` where the provider names what it made); ProviderError (a 502)
    when the provider sent something else."""
    try:
        body = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise ProviderError(f"provider {answer.provider!r} answered {answer.status} without a JSON object")
    return body


def passed(answer: UpstreamResponse, headers: dict[str, str] | None = None, body: bytes | None = None) -> Response:
    """The provider's answer as the client's, with fiscus's headers."""
    media = answer.headers.get("content-type", JSON)
    out = dict(headers or {})
    if "retry-after" in answer.headers:
        out["retry-after"] = answer.headers["retry-after"]
    return Response(answer.body if body is None else body, answer.status, out, media_type=media)


Handler = Callable[[BatchDoor, Request], Awaitable[Response]]


def endpoint(
    door: BatchDoor, handler: Handler, protocol: Protocol, route: str
) -> Callable[[Request], Awaitable[Response]]:
    """`handler` with every failure answered in `protocol`'s error format, never a traceback."""
    metrics = door.gateway.metrics

    async def answer(request: Request) -> Response:
        try:
            response = await handler(door, request)
        except BadRequest as exc:
            body = error_body(protocol, exc.status, exc.message, param=exc.param, code=exc.code)
            response = Response(body, exc.status, exc.headers, media_type=JSON)
        except ProviderError as exc:
            metrics.error("upstream")
            response = Response(error_body(protocol, 502, f"upstream provider failed: {exc}"), 502, media_type=JSON)
        except StoreError as exc:
            log.error("batch store failed: %s", exc)
            metrics.error("store")
            body = error_body(protocol, 503, f"budget or batch store unavailable: {exc}")
            response = Response(body, 503, media_type=JSON)
        except FiscusError as exc:
            response = Response(error_body(protocol, 400, str(exc)), 400, media_type=JSON)
        except Exception:
            log.exception("gateway error on %s", route)
            metrics.error("internal")
            response = Response(error_body(protocol, 500, "internal gateway error"), 500, media_type=JSON)
        metrics.request(route, response.status_code)
        return response

    return answer
