"""Reading a saved response: tell which format it is, whole body or stream, and read its usage."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from fiscus.errors import UsageFormatError
from fiscus.usage import anthropic, bedrock, gemini, openai_chat, openai_responses
from fiscus.usage.estimate import count_request_tokens
from fiscus.usage.model import Usage
from fiscus.usage.sse import SSEEvent, SSEParser
from fiscus.usage.stream import child, decode
from fiscus.usage.tracker import ACCUMULATORS
from fiscus.usage.wire import PROVIDER_FORMATS, WireFormat

_BODY_READERS: dict[WireFormat, Callable[[Mapping[str, Any]], Usage]] = {
    WireFormat.OPENAI_CHAT: openai_chat.usage_from_body,
    WireFormat.OPENAI_RESPONSES: openai_responses.usage_from_body,
    WireFormat.ANTHROPIC: anthropic.usage_from_body,
    WireFormat.GEMINI: gemini.usage_from_body,
    WireFormat.BEDROCK_CONVERSE: bedrock.usage_from_body,
}
_ANTHROPIC_TYPES = frozenset(
    {"message", "message_start", "message_delta", "message_stop", "content_block_start", "content_block_delta",
     "content_block_stop", "ping"}
)  # fmt: skip
_SSE_FIELDS = (b"data:", b"event:", b"id:", b"retry:", b":")
_DETECT_EVENTS = 8  # the first few events tell the format; no need to decode a whole stream to know it


@dataclass(frozen=True, slots=True)
class UsageReading:
    """The usage read from one saved response, with what the response said about itself. `provider` is the one
    named when reading, else the format's own."""

    usage: Usage
    format: WireFormat
    model: str | None
    streamed: bool
    named_provider: str | None = field(default=None, compare=False)

    @property
    def provider(self) -> str:
        return self.named_provider or self.format.provider


def usage_from_body(body: Mapping[str, Any], format: WireFormat | str | None = None) -> Usage:
    """Usage of a whole (non-streamed) response body, in `format` or the one detected."""
    fmt = WireFormat(format) if format is not None else detect_object(body)
    if fmt is None:
        raise UsageFormatError("unknown format: no usage fields found")
    return _BODY_READERS[fmt](body)


def detect_object(obj: Mapping[str, Any]) -> WireFormat | None:
    """The format of a response body or of one stream event's JSON, or None when it shows none."""
    kind = obj.get("type")
    if isinstance(kind, str):
        if kind.startswith("response."):
            return WireFormat.OPENAI_RESPONSES
        if kind in _ANTHROPIC_TYPES:
            return WireFormat.ANTHROPIC
    marker = obj.get("object")
    if marker in ("chat.completion", "chat.completion.chunk") or "choices" in obj:
        return WireFormat.OPENAI_CHAT
    if marker == "response":
        return WireFormat.OPENAI_RESPONSES
    if "candidates" in obj or "usageMetadata" in obj or "modelVersion" in obj:
        return WireFormat.GEMINI
    if "usage" in child(obj, "metadata") or any(key in obj for key in bedrock.STREAM_EVENTS):
        return WireFormat.BEDROCK_CONVERSE
    usage = obj.get("usage")
    if bedrock.is_usage(usage):
        return WireFormat.BEDROCK_CONVERSE
    if openai_chat.is_usage(usage):
        return WireFormat.OPENAI_CHAT
    if isinstance(usage, Mapping) and ("input_tokens_details" in usage or "output_tokens_details" in usage):
        return WireFormat.OPENAI_RESPONSES
    if anthropic.is_usage(usage):
        return WireFormat.ANTHROPIC
    return None


def _detect_events(events: Iterable[SSEEvent | Mapping[str, Any]]) -> WireFormat | None:
    for index, event in enumerate(events):
        if index >= _DETECT_EVENTS:
            break
        if isinstance(event, SSEEvent):
            if event.event and event.event.startswith("response."):
                return WireFormat.OPENAI_RESPONSES
            if event.event in _ANTHROPIC_TYPES:
                return WireFormat.ANTHROPIC
            obj = decode(event.data)
        else:
            obj = event
        found = detect_object(obj) if obj is not None else None
        if found is not None:
            return found
    return None


def _choose(detected: WireFormat | None, format: WireFormat | None, provider: str | None) -> WireFormat:
    if format is not None:
        return format
    allowed: Sequence[WireFormat] = tuple(WireFormat)
    if provider is not None:
        if provider.lower() not in PROVIDER_FORMATS:
            raise UsageFormatError(f"unknown provider {provider!r}: expected one of {', '.join(PROVIDER_FORMATS)}")
        allowed = PROVIDER_FORMATS[provider.lower()]
    if detected is None:
        if len(allowed) == 1:
            return allowed[0]
        raise UsageFormatError("unknown format: no usage fields found")
    if detected not in allowed:
        raise UsageFormatError(f"provider {provider} does not match the response's format ({detected.value})")
    return detected


def _model_of(body: Mapping[str, Any]) -> str | None:
    for value in (body.get("model"), body.get("modelVersion"), child(body, "response").get("model")):
        if isinstance(value, str) and value:
            return value
    return None


def _provider_error(body: Mapping[str, Any]) -> str | None:
    error = body.get("error")
    if error is None:
        return None
    if isinstance(error, Mapping):
        return str(error.get("message") or error.get("type") or error.get("status") or "unspecified")
    return str(error)


def _read_events(
    events: Sequence[SSEEvent | Mapping[str, Any]], fmt: WireFormat, provider: str | None, input_tokens: int | None
) -> UsageReading:
    accumulator = ACCUMULATORS[fmt]()
    for event in events:
        if isinstance(event, SSEEvent):
            accumulator.feed_data(event.data, event.event)
        elif isinstance(event, Mapping):
            accumulator.feed(event)
    usage = accumulator.finish(input_tokens)
    return UsageReading(usage, fmt, accumulator.model, streamed=True, named_provider=provider)


def _request_tokens(request: Mapping[str, Any] | None, fmt: WireFormat) -> int | None:
    if request is None:
        return None
    if fmt is WireFormat.BEDROCK_CONVERSE:  # Converse's messages hold content blocks as Anthropic's do
        fmt = WireFormat.ANTHROPIC
    return count_request_tokens(request, fmt)


def _json_lines(text: bytes) -> list[Any] | None:
    """Every line a JSON object, or None."""
    events = [decode(line) for line in text.splitlines() if line.strip()]
    return events if len(events) > 1 and all(e is not None for e in events) else None


def read_usage(
    data: bytes,
    format: WireFormat | None = None,
    *,
    provider: str | None = None,
    request: Mapping[str, Any] | None = None,
) -> UsageReading:
    """Usage of a saved response body or SSE stream; `format` forces a format, `provider` narrows detection (and
    names who is to be paid). A stream that ended without its usage is estimated; `request` (the body that was
    sent) gives that estimate its input. A malformed count in a body is a `UsageFormatError` naming the field."""
    provider = provider.lower() if provider else None
    text = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text:
        raise UsageFormatError("not a provider response: the file is empty")
    if text[:1] in (b"{", b"["):
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            lines = _json_lines(text)
            if lines is None:
                raise UsageFormatError(f"not a provider response: malformed JSON ({exc.args[0]})") from None
            parsed = lines  # one event per line, as stream events are often saved
        if isinstance(parsed, list):  # Gemini's streamGenerateContent without alt=sse: a JSON array of chunks
            chunks = [item for item in parsed if isinstance(item, Mapping)]
            fmt = _choose(_detect_events(chunks), format, provider)
            return _read_events(chunks, fmt, provider, _request_tokens(request, fmt))
        if not isinstance(parsed, Mapping):
            raise UsageFormatError("not a provider response: expected a JSON object")
        detected = detect_object(parsed)
        error = _provider_error(parsed)
        if error is not None and detected is None:
            raise UsageFormatError(f"the body is a provider error, not a response: {error}")
        fmt = _choose(detected, format, provider)
        return UsageReading(_BODY_READERS[fmt](parsed), fmt, _model_of(parsed), streamed=False, named_provider=provider)
    if text.startswith(_SSE_FIELDS):
        parser = SSEParser()
        events = parser.feed(text)
        events += [event for event in parser.close() if decode(event.data) is not None]  # drop a torn last event
        events = [event for event in events if not event.is_done]
        if not events:
            raise UsageFormatError("not a provider response: the SSE stream has no events")
        fmt = _choose(_detect_events(events), format, provider)
        return _read_events(events, fmt, provider, _request_tokens(request, fmt))
    raise UsageFormatError("not a provider response: expected JSON or an SSE stream")
