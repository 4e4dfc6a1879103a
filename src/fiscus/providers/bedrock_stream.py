"""Bedrock's streamed Claude answers (InvokeModelWithResponseStream) read as Anthropic's server-sent events.

Each `chunk` event of the AWS event stream carries `{"bytes": base64}`, and those bytes are one Anthropic stream
event (`message_start`, `content_block_delta`, …, `message_stop`, the last with Bedrock's
`amazon-bedrock-invocationMetrics`). Handing them on as `event: <type>` / `data: <json>` frames lets the client,
the usage reader and the relay treat Bedrock like Anthropic itself. An exception message mid-stream becomes
Anthropic's `error` event. Sans-IO.
"""

from __future__ import annotations

import base64
import binascii

import orjson

from fiscus.providers.aws_eventstream import Decoder, EventStreamError, Message
from fiscus.providers.translate.common import anthropic_error

MEDIA_TYPE = "application/vnd.amazon.eventstream"

# Bedrock's stream exceptions (`:exception-type`) → Anthropic's error types.
_ERROR_TYPES = {
    "throttlingException": "rate_limit_error",
    "serviceUnavailableException": "overloaded_error",
    "modelStreamErrorException": "api_error",
    "modelTimeoutException": "api_error",
    "internalServerException": "api_error",
    "validationException": "invalid_request_error",
}


class BedrockMessagesStream:
    """A `StreamTranslation`: event-stream bytes in, split anywhere; Anthropic SSE bytes out."""

    def __init__(self) -> None:
        self._decoder = Decoder()
        self._failed = False

    def feed(self, data: bytes) -> bytes:
        if self._failed:
            return b""
        try:
            messages = self._decoder.feed(data)
        except EventStreamError as exc:
            self._failed = True
            return _error(f"Bedrock sent a malformed event stream: {exc}", "api_error")
        return b"".join(_frame(message) for message in messages)

    def close(self) -> bytes:
        if self._decoder.pending and not self._failed:
            return _error("Bedrock's event stream ended mid-message", "api_error")
        return b""


def _frame(message: Message) -> bytes:
    if message.kind != "event":
        kind = message.headers.get(":exception-type") or message.headers.get(":error-code") or "internalServerException"
        return _error(_message_text(message.payload) or kind, _ERROR_TYPES.get(kind, "api_error"))
    if message.headers.get(":event-type", "chunk") != "chunk":
        return b""
    try:
        envelope = orjson.loads(message.payload)
        event = base64.b64decode(envelope["bytes"], validate=True)
        name = orjson.loads(event)["type"]
    except (orjson.JSONDecodeError, binascii.Error, KeyError, TypeError) as exc:
        return _error(f"Bedrock sent a chunk that is not an Anthropic event ({type(exc).__name__})", "api_error")
    if not isinstance(name, str):
        return _error("Bedrock sent a chunk without an event type", "api_error")
    if b"\n" in event:  # a data line must be one line
        event = orjson.dumps(orjson.loads(event))
    return b"event: " + name.encode() + b"\ndata: " + event + b"\n\n"


def _message_text(payload: bytes) -> str | None:
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload.decode(errors="replace") or None
    message = value.get("message") if isinstance(value, dict) else None
    return message if isinstance(message, str) else None


def _error(message: str, kind: str) -> bytes:
    return b"event: error\ndata: " + orjson.dumps(anthropic_error(message, kind)) + b"\n\n"
