"""OpenAI Responses API usage.

`usage.input_tokens` includes `input_tokens_details.cached_tokens` (cache reads) and `cache_write_tokens`
(cache writes); `output_tokens` includes `output_tokens_details.reasoning_tokens`. Each `web_search_call` item
in the output is one web search, billed per search where the model has a price for it. A stream reports usage
once, in its terminal event:
`response.completed`, `response.incomplete` or `response.failed`, under `response.usage`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fiscus.errors import UsageFormatError
from fiscus.usage.model import Usage, UsageDetail
from fiscus.usage.stream import Event, StreamAccumulator, child, count, decode
from fiscus.usage.wire import WireFormat

TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
_START_EVENTS = frozenset({"response.created", "response.in_progress"})
_TEXT_DELTAS = frozenset(
    {"response.output_text.delta", "response.refusal.delta", "response.function_call_arguments.delta"}
)
_REASONING_DELTAS = frozenset({"response.reasoning_summary_text.delta", "response.reasoning_text.delta"})
_DELTAS = _TEXT_DELTAS | _REASONING_DELTAS


def usage_from_fields(usage: Mapping[str, Any], output_items: Any = None) -> Usage:
    """Usage of a `response.usage` object; `output_items` (the response's `output`) gives the server tools run."""
    total_input = count(usage, "input_tokens")
    details = child(usage, "input_tokens_details")
    cached = min(count(details, "cached_tokens"), total_input)
    written = min(count(details, "cache_write_tokens"), total_input - cached)
    output = count(usage, "output_tokens")
    reasoning = min(count(child(usage, "output_tokens_details"), "reasoning_tokens"), output)
    searches = sum(
        1 for item in output_items or () if isinstance(item, Mapping) and item.get("type") == "web_search_call"
    )
    return Usage(
        input_tokens=total_input - cached - written,
        cache_read_tokens=cached,
        cache_write_5m_tokens=written,
        output_tokens=output,
        reasoning_tokens=reasoning,
        detail=UsageDetail(server_tools=(("web_searches", searches),)) if searches else None,
    )


def is_usage(usage: Any) -> bool:
    return isinstance(usage, Mapping) and ("input_tokens" in usage or "output_tokens" in usage)


def usage_from_body(body: Mapping[str, Any]) -> Usage:
    """Usage of a whole `response` object (or of a terminal stream event wrapping one)."""
    if isinstance(body.get("response"), Mapping):
        body = body["response"]
    usage = body.get("usage")
    if not is_usage(usage):
        raise UsageFormatError("no Responses usage in the body: usage.input_tokens is missing")
    return usage_from_fields(usage, body.get("output"))


class ResponsesStreamAccumulator(StreamAccumulator):
    format = WireFormat.OPENAI_RESPONSES

    def __init__(self) -> None:
        super().__init__()
        self._usage: Mapping[str, Any] | None = None
        self._output: Any = None
        self.status: str | None = None

    def feed(self, event: Event) -> None:
        kind = event.get("type")
        if kind in _DELTAS:
            self._pending.append(event)
            return
        response = child(event, "response")
        if self.model is None and isinstance(response.get("model"), str):
            self.model = response["model"]
        if kind in TERMINAL_EVENTS:
            self.status = response.get("status") if isinstance(response.get("status"), str) else kind
            if is_usage(response.get("usage")):
                self._usage = response["usage"]
                self._output = response.get("output")

    def feed_data(self, data: str, name: str | None = None) -> None:
        if name in _DELTAS:
            self._pending.append(data)
        elif name is None or name in TERMINAL_EVENTS or (name in _START_EVENTS and self.model is None):
            event = decode(data)
            if event is not None:
                self.feed(event)
        # other named events (output_item.added, content_part.done, ...) carry neither usage nor new text

    @property
    def usage(self) -> Usage | None:
        return None if self._usage is None else usage_from_fields(self._usage, self._output)

    def _collect(self, event: Event, text: list[str], reasoning: list[str]) -> None:
        delta = event.get("delta")
        if isinstance(delta, str):
            (reasoning if event.get("type") in _REASONING_DELTAS else text).append(delta)
