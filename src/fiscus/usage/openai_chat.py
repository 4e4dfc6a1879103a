"""OpenAI Chat Completions usage (also what most OpenAI-compatible servers speak).

`usage.prompt_tokens` includes `prompt_tokens_details.cached_tokens` (cache reads) and `cache_write_tokens`
(cache writes, billed at their own rate where the model has one), so uncached input is what is left;
`completion_tokens` already includes `completion_tokens_details.reasoning_tokens`; `audio_tokens` in either
details object are the audio share, priced at the audio rate. A stream carries usage only when the request set
`stream_options.include_usage`: one last chunk with `choices: []`.

Compatible servers add their own fields: DeepSeek reports `prompt_cache_hit_tokens` / `prompt_cache_miss_tokens`
at the top level; OpenRouter reports what it charged as `usage.cost` (USD), which is then the call's price.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from fiscus.errors import UsageFormatError
from fiscus.usage.model import Usage, UsageDetail
from fiscus.usage.stream import Event, StreamAccumulator, child, count, decode
from fiscus.usage.wire import WireFormat

# `"usage": {` with an object, not `"usage": null` (every chunk has that once include_usage is set).
_HAS_USAGE = re.compile(r'"usage"\s*:\s*\{')


def usage_from_fields(usage: Mapping[str, Any]) -> Usage:
    prompt_details = child(usage, "prompt_tokens_details")
    completion_details = child(usage, "completion_tokens_details")
    hits = count(usage, "prompt_cache_hit_tokens")  # DeepSeek's own split of the prompt
    prompt = count(usage, "prompt_tokens") or hits + count(usage, "prompt_cache_miss_tokens")
    cached = min(count(prompt_details, "cached_tokens") or hits, prompt)
    written = min(count(prompt_details, "cache_write_tokens"), prompt - cached)
    output = count(usage, "completion_tokens")
    reasoning = min(count(completion_details, "reasoning_tokens"), output)
    fresh = prompt - cached - written
    modalities = tuple(
        (part, "audio", n)
        for part, n in (
            ("input", min(count(prompt_details, "audio_tokens"), fresh)),
            ("output", min(count(completion_details, "audio_tokens"), output)),
        )
        if n
    )
    reported = reported_cost(usage)
    detail = UsageDetail(modalities, reported_cost=reported) if modalities or reported is not None else None
    return Usage(
        input_tokens=fresh,
        cache_read_tokens=cached,
        cache_write_5m_tokens=written,
        output_tokens=output,
        reasoning_tokens=reasoning,
        detail=detail,
    )


def reported_cost(usage: Mapping[str, Any]) -> Decimal | None:
    """OpenRouter's `usage.cost`: what it charged for the call, in USD (None when the server sent none)."""
    value = usage.get("cost")
    if value is None:
        return None
    # str(float) is the shortest text that reads back as the same float: the figure as the server wrote it.
    cost = Decimal(str(value)) if isinstance(value, int | float) and not isinstance(value, bool) else None
    if cost is None or not cost.is_finite() or cost < 0:
        raise UsageFormatError(f"malformed usage field 'cost': expected a number of USD, got {value!r}")
    return cost


def is_usage(usage: Any) -> bool:
    return isinstance(usage, Mapping) and ("prompt_tokens" in usage or "completion_tokens" in usage)


def usage_from_body(body: Mapping[str, Any]) -> Usage:
    """Usage of a whole `chat.completion` body."""
    usage = body.get("usage")
    if not is_usage(usage):
        raise UsageFormatError("no Chat Completions usage in the body: usage.prompt_tokens is missing")
    return usage_from_fields(usage)


class ChatStreamAccumulator(StreamAccumulator):
    format = WireFormat.OPENAI_CHAT

    def __init__(self) -> None:
        super().__init__()
        self._usage: Mapping[str, Any] | None = None

    def feed(self, event: Event) -> None:
        if self.model is None and isinstance(event.get("model"), str):
            self.model = event["model"]
        usage = event.get("usage")
        if is_usage(usage):
            self._usage = usage  # some servers repeat a running count: the latest is the total
        if event.get("choices"):
            self._pending.append(event)

    def feed_data(self, data: str, name: str | None = None) -> None:
        if data == "[DONE]":
            return
        if self.model is None or _HAS_USAGE.search(data):
            event = decode(data)
            if event is not None:
                self.feed(event)
        else:
            self._pending.append(data)

    @property
    def usage(self) -> Usage | None:
        return None if self._usage is None else usage_from_fields(self._usage)

    def _collect(self, event: Event, text: list[str], reasoning: list[str]) -> None:
        for choice in event.get("choices") or ():
            delta = child(choice, "delta")
            for key in ("content", "refusal"):
                if isinstance(delta.get(key), str):
                    text.append(delta[key])
            for key in ("reasoning_content", "reasoning"):  # compatible servers that stream reasoning
                if isinstance(delta.get(key), str):
                    reasoning.append(delta[key])
            for call in delta.get("tool_calls") or ():
                function = child(call, "function")
                for key in ("name", "arguments"):
                    if isinstance(function.get(key), str):
                        text.append(function[key])
