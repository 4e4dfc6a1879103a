"""AWS Bedrock Converse usage (`POST /model/{modelId}/converse` and `converse-stream`).

`usage.inputTokens` is uncached input only: `cacheReadInputTokens` and `cacheWriteInputTokens` are apart, the
writes split by TTL in `cacheDetails` (`[{"ttl": "1h", "inputTokens": n}, ...]`; no split means 5-minute
writes). `outputTokens` includes any reasoning. The model is named in the URL, not the body.

A ConverseStream (its event-stream frames decoded to JSON, as the AWS SDKs hand them over) is a series of
one-key objects — `messageStart`, `contentBlockDelta`, `messageStop` — ending with `metadata`, which carries
the usage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fiscus.errors import UsageFormatError
from fiscus.usage.model import Usage
from fiscus.usage.stream import Event, StreamAccumulator, child, count
from fiscus.usage.wire import WireFormat

STREAM_EVENTS = frozenset({"messageStart", "contentBlockStart", "contentBlockDelta", "contentBlockStop", "messageStop"})


def usage_from_fields(usage: Mapping[str, Any]) -> Usage:
    written = count(usage, "cacheWriteInputTokens")
    write_1h = 0
    details = usage.get("cacheDetails")
    if isinstance(details, list):
        write_1h = sum(count(d, "inputTokens") for d in details if isinstance(d, Mapping) and d.get("ttl") == "1h")
        written = written or sum(count(d, "inputTokens") for d in details if isinstance(d, Mapping))
    elif details is not None:
        raise UsageFormatError(f"malformed usage field 'cacheDetails': expected a list, got {details!r}")
    write_1h = min(write_1h, written)
    return Usage(
        input_tokens=count(usage, "inputTokens"),
        cache_read_tokens=count(usage, "cacheReadInputTokens"),
        cache_write_5m_tokens=written - write_1h,
        cache_write_1h_tokens=write_1h,
        output_tokens=count(usage, "outputTokens"),
    )


def is_usage(usage: Any) -> bool:
    return isinstance(usage, Mapping) and ("inputTokens" in usage or "outputTokens" in usage)


def usage_from_body(body: Mapping[str, Any]) -> Usage:
    """Usage of a whole Converse response (or of a stream's `metadata` event)."""
    usage = body.get("usage")
    if not is_usage(usage):
        usage = child(body, "metadata").get("usage")
    if not is_usage(usage):
        raise UsageFormatError("no Bedrock Converse usage in the body: usage.inputTokens is missing")
    return usage_from_fields(usage)


class ConverseStreamAccumulator(StreamAccumulator):
    format = WireFormat.BEDROCK_CONVERSE

    def __init__(self) -> None:
        super().__init__()
        self._usage: Mapping[str, Any] | None = None
        self.stop_reason: str | None = None

    def feed(self, event: Event) -> None:
        if "contentBlockDelta" in event:
            self._pending.append(event)
        elif "metadata" in event:
            usage = child(event, "metadata").get("usage")
            if is_usage(usage):
                self._usage = usage
        elif "messageStop" in event:
            stop = child(event, "messageStop").get("stopReason")
            if isinstance(stop, str):
                self.stop_reason = stop

    @property
    def usage(self) -> Usage | None:
        return None if self._usage is None else usage_from_fields(self._usage)

    def _collect(self, event: Event, text: list[str], reasoning: list[str]) -> None:
        delta = child(child(event, "contentBlockDelta"), "delta")
        if isinstance(delta.get("text"), str):
            text.append(delta["text"])
        tool = child(delta, "toolUse")
        if isinstance(tool.get("input"), str):
            text.append(tool["input"])
        thinking = child(delta, "reasoningContent")
        if isinstance(thinking.get("text"), str):
            reasoning.append(thinking["text"])
