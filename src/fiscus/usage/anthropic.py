"""Anthropic Messages usage.

`input_tokens` excludes cache traffic: `cache_read_input_tokens` and `cache_creation_input_tokens` are
apart, the latter split by TTL in `cache_creation.ephemeral_5m_input_tokens` / `ephemeral_1h_input_tokens`
(no split means all writes are 5-minute ones). `output_tokens` includes thinking, reported in
`output_tokens_details.thinking_tokens` where the API gives it.

`server_tool_use` counts the server-side tools run (`web_search_requests`, billed per search). When a call
sampled more than once — a context-compaction turn, an advisor sub-inference on another model, a fallback
model — `usage.iterations` lists each billed pass and the top-level counts cover only the final message: the
call is the sum of its iterations, each priced at its own `model` (absent: the call's model).

A stream opens with `message_start.message.usage` and ends with `message_delta.usage`, whose counts are
cumulative: each count is the larger of the two reports (never summed), so a field the delta leaves out, sends
null or resets to 0 (cache reads, in some final events) keeps its `message_start` value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from fiscus.errors import UsageFormatError
from fiscus.usage.model import Iteration, Usage, UsageDetail
from fiscus.usage.stream import Event, StreamAccumulator, child, count, decode
from fiscus.usage.wire import WireFormat

_USAGE_EVENTS = frozenset({"message_start", "message_delta", "error"})


# Server-tool counters and the genai-prices unit each is billed as; others are kept under their own names.
_TOOL_UNITS = {"web_search_requests": "web_searches"}


def usage_from_fields(usage: Mapping[str, Any]) -> Usage:
    plain = _plain(usage)
    server = child(usage, "server_tool_use")
    tools = tuple((_TOOL_UNITS.get(name, name), n) for name in server if (n := count(server, name)))
    iterations = _iterations(usage.get("iterations"))
    if not tools and not iterations:
        return plain
    if iterations:
        billed = sum((it.usage for it in iterations), Usage())
        plain = Usage(
            input_tokens=billed.input_tokens,
            cache_read_tokens=billed.cache_read_tokens,
            cache_write_5m_tokens=billed.cache_write_5m_tokens,
            cache_write_1h_tokens=billed.cache_write_1h_tokens,
            output_tokens=billed.output_tokens,
            reasoning_tokens=min(plain.reasoning_tokens, billed.output_tokens),
        )
    return replace(plain, detail=UsageDetail(server_tools=tools, iterations=iterations))


def _iterations(items: Any) -> tuple[Iteration, ...]:
    if not isinstance(items, list):
        return ()
    out = []
    for item in items:
        if not isinstance(item, Mapping):
            raise UsageFormatError(f"malformed usage field 'iterations': expected objects, got {item!r}")
        model = item.get("model")
        kind = item.get("type")
        out.append(Iteration(str(kind or "message"), _plain(item), model if isinstance(model, str) and model else None))
    return tuple(out)


def _plain(usage: Mapping[str, Any]) -> Usage:
    creation = count(usage, "cache_creation_input_tokens")
    split = child(usage, "cache_creation")
    write_5m, write_1h = creation, 0
    if split:
        write_5m = count(split, "ephemeral_5m_input_tokens")
        write_1h = count(split, "ephemeral_1h_input_tokens")
        if not creation:
            creation = write_5m + write_1h
        elif write_5m + write_1h != creation:  # the total is authoritative; keep the split's 1 h share
            write_1h = min(write_1h, creation)
            write_5m = creation - write_1h
    output = count(usage, "output_tokens")
    return Usage(
        input_tokens=count(usage, "input_tokens"),
        cache_read_tokens=count(usage, "cache_read_input_tokens"),
        cache_write_5m_tokens=write_5m,
        cache_write_1h_tokens=write_1h,
        output_tokens=output,
        reasoning_tokens=min(count(child(usage, "output_tokens_details"), "thinking_tokens"), output),
    )


def is_usage(usage: Any) -> bool:
    return isinstance(usage, Mapping) and ("input_tokens" in usage or "output_tokens" in usage)


def usage_from_body(body: Mapping[str, Any]) -> Usage:
    """Usage of a whole `message` body."""
    usage = body.get("usage")
    if not is_usage(usage):
        raise UsageFormatError("no Anthropic usage in the body: usage.input_tokens is missing")
    return usage_from_fields(usage)


def merge_fields(into: dict[str, Any], update: Mapping[str, Any]) -> None:
    """Fold a later usage report of the same stream into `into`: counts keep the larger value (they are
    cumulative, and a final event may report a cache read as 0), nested objects merge, lists are replaced."""
    for key, value in update.items():
        if value is None:
            continue
        old = into.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            merged = dict(old)
            merge_fields(merged, value)
            into[key] = merged
        elif type(value) is int and type(old) is int:
            into[key] = max(old, value)
        else:
            into[key] = value


class AnthropicStreamAccumulator(StreamAccumulator):
    format = WireFormat.ANTHROPIC

    def __init__(self) -> None:
        super().__init__()
        self._fields: dict[str, Any] = {}  # message_start's usage, overwritten field by field by message_delta
        self._start: dict[str, Any] | None = None  # message_start's usage alone, for a cut-off stream
        self._final = False
        self.stop_reason: str | None = None
        self.error: str | None = None

    def feed(self, event: Event) -> None:
        kind = event.get("type")
        if kind == "content_block_delta":
            self._pending.append(event)
        elif kind == "message_start":
            message = child(event, "message")
            if isinstance(message.get("model"), str):
                self.model = message["model"]
            usage = child(message, "usage")
            merge_fields(self._fields, usage)
            self._start = dict(self._fields)
        elif kind == "message_delta":
            usage = child(event, "usage")
            merge_fields(self._fields, usage)
            if usage.get("output_tokens") is not None:
                self._final = True
            stop = child(event, "delta").get("stop_reason")
            if isinstance(stop, str):
                self.stop_reason = stop
        elif kind == "error":
            error = child(event, "error")
            self.error = str(error.get("message") or error.get("type") or "error")

    def feed_data(self, data: str, name: str | None = None) -> None:
        if name == "content_block_delta":
            self._pending.append(data)
        elif name is None or name in _USAGE_EVENTS:
            event = decode(data)
            if event is not None:
                self.feed(event)
        # ping, content_block_start/stop, message_stop: nothing to count

    @property
    def usage(self) -> Usage | None:
        return usage_from_fields(self._fields) if self._final else None

    def partial_usage(self) -> Usage | None:
        return None if self._start is None else usage_from_fields(self._start)

    def _collect(self, event: Event, text: list[str], reasoning: list[str]) -> None:
        delta = child(event, "delta")
        kind = delta.get("type")
        if kind == "text_delta" and isinstance(delta.get("text"), str):
            text.append(delta["text"])
        elif kind == "input_json_delta" and isinstance(delta.get("partial_json"), str):
            text.append(delta["partial_json"])
        elif kind == "thinking_delta" and isinstance(delta.get("thinking"), str):
            reasoning.append(delta["thinking"])
