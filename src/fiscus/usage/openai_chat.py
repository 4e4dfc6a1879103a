"""OpenAI Chat Completions usage (also what most OpenAI-compatible servers speak).

`usage.prompt_tokens` includes `prompt_tokens_details.cached_tokens`, so uncached input is the difference;
`completion_tokens` already includes `completion_tokens_details.reasoning_tokens`. A stream carries usage
only when the request set `stream_options.include_usage`: one last chunk with `choices: []`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fiscus.errors import UsageFormatError
from fiscus.usage.model import Usage
from fiscus.usage.stream import Event, StreamAccumulator, child, count, decode
from fiscus.usage.wire import WireFormat

# `"usage": {` with an object, not `"usage": null` (every chunk has that once include_usage is set).
_HAS_USAGE = re.compile(r'"usage"\s*:\s*\{')


def usage_from_fields(usage: Mapping[str, Any]) -> Usage:
    prompt = count(usage, "prompt_tokens")
    # DeepSeek and some compatible servers report cache hits at the top level instead.
    cached = count(child(usage, "prompt_tokens_details"), "cached_tokens") or count(usage, "prompt_cache_hit_tokens")
    cached = min(cached, prompt)
    output = count(usage, "completion_tokens")
    reasoning = min(count(child(usage, "completion_tokens_details"), "reasoning_tokens"), output)
    return Usage(
        input_tokens=prompt - cached, cache_read_tokens=cached, output_tokens=output, reasoning_tokens=reasoning
    )


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
