"""A batch's requests as fiscus reads them before they are sent: one `BatchLine` each, sized as its endpoint's
calls are (the input counted from the body, the output cap asked for, the most input it may write to the cache).

The input a batch names is checked here for what both doors rely on — a unique `custom_id`, the endpoint's URL,
a JSON object per request with a model and, for Anthropic, its `max_tokens` — and `BatchInputError` names the
first thing wrong. The gateway checks each request's body further, as its endpoint would.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from fiscus.attribution import Attribution
from fiscus.errors import FiscusError
from fiscus.usage.estimate import anthropic_cache_write_bound, count_request_tokens
from fiscus.usage.wire import WireFormat

BATCH_LEASE_S = 25 * 3600.0  # the 24 h completion window, and an hour to read the results in
MAX_REQUESTS = 100_000  # Anthropic's limit for one batch
MAX_FILE_REQUESTS = 50_000  # OpenAI's limit for one input file
OPENAI_ENDPOINTS: dict[str, WireFormat] = {
    "/v1/chat/completions": WireFormat.OPENAI_CHAT,
    "/v1/responses": WireFormat.OPENAI_RESPONSES,
}
# The output-cap fields of each format; the last one set wins, as the endpoints read them.
CAP_FIELDS: dict[WireFormat, tuple[str, ...]] = {
    WireFormat.OPENAI_CHAT: ("max_completion_tokens", "max_tokens"),
    WireFormat.OPENAI_RESPONSES: ("max_output_tokens",),
    WireFormat.ANTHROPIC: ("max_tokens",),
}


class BatchInputError(FiscusError):
    """A batch the provider would reject, or fiscus cannot govern: one line naming the request and the field."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True, slots=True)
class BatchLine:
    """One request of a batch, as estimated before it is sent."""

    custom_id: str
    model: str
    input_tokens: int
    max_tokens: int | None
    cache_write_tokens: int  # the most input it may write to the prompt cache (0: it writes none)


def batch_line(custom_id: str, body: Any, fmt: WireFormat) -> BatchLine:
    """A request of the batch, sized; `BatchInputError` naming it when it cannot be."""
    if not isinstance(body, dict):
        raise BatchInputError(f"batch request {custom_id!r}: its body must be a JSON object", param="body")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BatchInputError(f"batch request {custom_id!r}: 'model' must be a non-empty string", param="model")
    if body.get("stream"):
        raise BatchInputError(f"batch request {custom_id!r}: stream is not supported in a batch", param="stream")
    max_tokens: int | None = None
    for name in CAP_FIELDS[fmt]:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BatchInputError(f"batch request {custom_id!r}: '{name}' must be a positive integer", param=name)
        max_tokens = value
    if fmt is WireFormat.ANTHROPIC and max_tokens is None:
        raise BatchInputError(f"batch request {custom_id!r}: max_tokens: Field required", param="max_tokens")
    tokens = count_request_tokens(body, fmt)
    writes = 0
    if fmt is WireFormat.ANTHROPIC and b'"cache_control"' in orjson.dumps(body):
        bound = anthropic_cache_write_bound(body)
        writes = tokens if bound is None else min(bound, tokens)
    return BatchLine(custom_id, model, tokens, max_tokens, writes)


def openai_input(data: bytes, url: str) -> list[tuple[str, Any]]:
    """(custom_id, body) of each request of an OpenAI batch input file (JSON lines) for endpoint `url`."""
    if url not in OPENAI_ENDPOINTS:
        raise BatchInputError(f"endpoint must be one of {', '.join(OPENAI_ENDPOINTS)}", param="endpoint")
    out: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for number, text in enumerate(data.splitlines(), start=1):
        if not text.strip():
            continue
        try:
            item = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise BatchInputError(f"input file line {number} is not valid JSON", param="input_file_id") from None
        custom_id = item.get("custom_id") if isinstance(item, dict) else None
        if not isinstance(custom_id, str) or not custom_id or custom_id in seen:
            raise BatchInputError(f"input file line {number}: a unique custom_id is required", param="custom_id")
        if item.get("url") != url or item.get("method", "POST") != "POST":
            raise BatchInputError(f"input file line {number}: method POST and url {url} expected", param="url")
        seen.add(custom_id)
        out.append((custom_id, item.get("body")))
    if not out:
        raise BatchInputError("the input file holds no requests", param="input_file_id")
    if len(out) > MAX_FILE_REQUESTS:
        raise BatchInputError(f"a batch holds at most {MAX_FILE_REQUESTS} requests", param="input_file_id")
    return out


def anthropic_input(requests: Any) -> list[tuple[str, Any]]:
    """(custom_id, params) of each request of an Anthropic Message Batch."""
    if not isinstance(requests, list) or not requests:
        raise BatchInputError("requests: a non-empty list is required", param="requests")
    if len(requests) > MAX_REQUESTS:
        raise BatchInputError(f"requests: at most {MAX_REQUESTS} requests per batch", param="requests")
    out: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for index, item in enumerate(requests):
        custom_id = item.get("custom_id") if isinstance(item, dict) else None
        if not isinstance(custom_id, str) or not custom_id or custom_id in seen:
            raise BatchInputError(f"requests.{index}.custom_id: a unique custom_id is required", param="custom_id")
        seen.add(custom_id)
        out.append((custom_id, item.get("params")))
    return out


def deferrable(policy: Any, attribution: Attribution) -> bool:
    """Whether the policy marks the batch's task class deferrable."""
    return attribution.task_class is not None and attribution.task_class in getattr(policy, "deferrable", ())


def line_event_id(group_event_id: str, custom_id: str) -> str:
    """The ledger id of one request's result: the same however often, and by whichever door or worker, it is
    settled."""
    return str(uuid.uuid5(uuid.UUID(group_event_id), custom_id))
