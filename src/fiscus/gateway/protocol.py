"""The three client protocols the gateway speaks: how a request is checked and how an error is written.

Validation is hand-written over the parsed JSON (no pydantic on the hot path): it checks exactly what the
gateway relies on — model, messages/input, stream, the output cap — and names the field when it is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from fiscus.usage.wire import WireFormat

# Deeper than any real request (tool schemas nest a few dozen levels at most) and below the depth at which
# re-serialising a body fails (orjson stops at 255): a body nested deeper is the client's error.
MAX_DEPTH = 128


class BadRequest(Exception):
    """A client error, answered in the client's own protocol. `status` is the HTTP status to send."""

    def __init__(self, message: str, *, status: int = 400, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param
        self.code = code
        self.headers: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class Protocol:
    """One endpoint family. `kinds` are the provider kinds that can serve it."""

    format: WireFormat
    operation: str  # fiscus.providers Operation
    cap_fields: tuple[str, ...]  # output-cap fields, the first is the one set when the client sent none
    content_field: str  # messages | input
    kinds: frozenset[str]

    @property
    def anthropic(self) -> bool:
        return self.format is WireFormat.ANTHROPIC


_OPENAI_KINDS = frozenset(
    {"openai", "openai-compatible", "azure-openai", "bedrock", "deepseek", "groq", "together", "mistral", "xai",
     "openrouter"}
)  # fmt: skip
_RESPONSES_KINDS = frozenset({"openai", "openai-compatible", "azure-openai", "groq", "xai"})
CHAT = Protocol(
    WireFormat.OPENAI_CHAT, "chat.completions", ("max_completion_tokens", "max_tokens"), "messages", _OPENAI_KINDS
)
RESPONSES = Protocol(WireFormat.OPENAI_RESPONSES, "responses", ("max_output_tokens",), "input", _RESPONSES_KINDS)
MESSAGES = Protocol(
    WireFormat.ANTHROPIC, "messages", ("max_tokens",), "messages", frozenset({"anthropic", "bedrock", "vertex"})
)


@dataclass(slots=True)
class ParsedRequest:
    body: dict[str, Any]
    model: str
    stream: bool
    max_tokens: int | None
    cap_field: str
    wants_usage: bool  # an OpenAI chat stream whose client asked for the usage chunk itself


def parse_request(protocol: Protocol, raw: bytes) -> ParsedRequest:
    """The parsed body, or `BadRequest` naming the first thing wrong with it."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest(f"request body must be a JSON object, got {type(body).__name__}")
    # Only a body with this many brackets can be nested this deep: the count is cheap, the walk is not.
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _depth_over(body, MAX_DEPTH):
        raise BadRequest(f"request body is nested deeper than {MAX_DEPTH} levels", code="invalid_request_body")
    model = body.get("model")
    if model is None:
        raise BadRequest("missing required parameter: 'model'", param="model", code="missing_required_parameter")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' must be a non-empty string", param="model", code="invalid_type")
    content = body.get(protocol.content_field)
    if content is None:
        field = protocol.content_field
        raise BadRequest(f"missing required parameter: '{field}'", param=field, code="missing_required_parameter")
    if protocol.content_field == "messages" and (not isinstance(content, list) or not content):
        raise BadRequest("'messages' must be a non-empty array", param="messages", code="invalid_type")
    if protocol.content_field == "input" and not isinstance(content, str | list):
        raise BadRequest("'input' must be a string or an array", param="input", code="invalid_type")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be a boolean", param="stream", code="invalid_type")
    cap_field, max_tokens = protocol.cap_fields[0], None
    for name in protocol.cap_fields:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BadRequest(f"'{name}' must be a positive integer", param=name, code="invalid_type")
        cap_field, max_tokens = name, value
    if protocol.anthropic and max_tokens is None:
        raise BadRequest("max_tokens: Field required", param="max_tokens", code="missing_required_parameter")
    _check_unsupported(protocol, body)
    wants_usage = False
    if protocol.format is WireFormat.OPENAI_CHAT and stream:
        options = body.get("stream_options")
        if options is not None and not isinstance(options, dict):
            raise BadRequest("'stream_options' must be an object", param="stream_options", code="invalid_type")
        wants_usage = bool(options and options.get("include_usage"))
    return ParsedRequest(body, model, stream, max_tokens, cap_field, wants_usage)


def _depth_over(value: Any, limit: int) -> bool:
    """Whether `value` nests lists and objects deeper than `limit` (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values() if isinstance(child, dict | list))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item if isinstance(child, dict | list))
    return False


def _check_unsupported(protocol: Protocol, body: dict[str, Any]) -> None:
    # Several choices per call and server-side background runs cannot be bounded by one reservation.
    n = body.get("n")
    if protocol.format is WireFormat.OPENAI_CHAT and n is not None and n != 1:
        raise BadRequest(
            "unsupported parameter: 'n' must be 1 through the fiscus gateway", param="n", code="unsupported_parameter"
        )
    if protocol.format is WireFormat.OPENAI_RESPONSES and body.get("background"):
        raise BadRequest(
            "unsupported parameter: 'background' responses are not supported by the fiscus gateway",
            param="background",
            code="unsupported_parameter",
        )


# --- error bodies ----------------------------------------------------------------------------------------------

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    502: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_body(
    protocol: Protocol,
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    kind: str | None = None,
) -> bytes:
    if protocol.anthropic:
        kind = kind or _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        error: dict[str, str] = {"type": kind, "message": message}
        if code is not None:  # fiscus's machine-readable reason, beside Anthropic's own fields
            error["code"] = code
        return orjson.dumps({"type": "error", "error": error})
    if kind is None:
        kind = "server_error" if status >= 500 else "invalid_request_error"
    return orjson.dumps({"error": {"message": message, "type": kind, "param": param, "code": code}})
