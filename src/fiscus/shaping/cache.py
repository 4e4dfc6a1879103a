"""Prompt-cache placement for Anthropic Messages requests (OpenAI and Gemini cache repeated prefixes by
themselves; Anthropic caches only up to a `cache_control` breakpoint the request sets).

`CachePlacer.place` puts one breakpoint after the request's stable prefix — its tools and system prompt — when
the request sets none, the prefix is long enough to be cached, and the same prefix was sent within the cache's
lifetime (five minutes) before. Why only then: a cache write costs 1.25 × the input price once and each read
0.1 ×, so a prefix sent once more loses a quarter of its price and one sent twice more or oftener wins; a
prefix seen before is likely to be seen again, one never seen may never be. The request is copied, not changed.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from fiscus.usage.estimate import CHARS_PER_TOKEN

CACHE_TTL_S = 300.0  # Anthropic's default (5 minute) cache lifetime, renewed by every read
MIN_PREFIX_TOKENS = 1024  # the smallest prompt Anthropic caches (more for some models: a shorter one is not cached)
_EPHEMERAL = {"type": "ephemeral"}


class CachePlacer:
    def __init__(
        self,
        *,
        ttl_s: float = CACHE_TTL_S,
        min_tokens: int = MIN_PREFIX_TOKENS,
        max_prefixes: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.min_tokens = min_tokens
        self.max_prefixes = max_prefixes
        self._clock = clock
        self._seen: OrderedDict[int, float] = OrderedDict()  # prefix hash → when last sent (oldest first)
        self._lock = threading.Lock()  # one placer serves every thread of a wrapped client
        self.placed = 0

    def place(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """A copy of `body` with a cache breakpoint after its tools and system prompt, or None to send it as is."""
        system, tools = body.get("system") or None, body.get("tools") or None
        if system is None and tools is None:
            return None  # nothing before the conversation to cache
        if system is not None and not (isinstance(system, str) or _ends_in_mapping(system)):
            return None  # a shape the provider will refuse anyway
        if tools is not None and not _ends_in_mapping(tools):
            return None
        try:
            prefix = orjson.dumps([tools, system])
        except TypeError:  # not plain JSON data (an SDK object): leave it alone
            return None
        if "cache_control" in body or b'"cache_control"' in prefix or _has_cache_control(body.get("messages")):
            return None  # the caller places its own breakpoints (or asks for automatic caching)
        if len(prefix) < self.min_tokens * CHARS_PER_TOKEN:  # a cheap bound: this runs on every request
            return None
        now, key = self._clock(), hash(prefix)
        with self._lock:
            last = self._seen.pop(key, None)
            self._seen[key] = now
            if len(self._seen) > self.max_prefixes:
                self._seen.popitem(last=False)
            if last is None or now - last > self.ttl_s:
                return None  # first sight (or the cache would have expired): no write yet
            self.placed += 1
        placed = dict(body)
        if system:
            placed["system"] = _marked_system(system)
        else:
            placed["tools"] = [*tools[:-1], {**tools[-1], "cache_control": _EPHEMERAL}]
        return placed


def _marked_system(system: str | list[Any]) -> list[Any]:
    if isinstance(system, str):
        return [{"type": "text", "text": system, "cache_control": _EPHEMERAL}]
    return [*system[:-1], {**system[-1], "cache_control": _EPHEMERAL}]


def _ends_in_mapping(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[-1], Mapping)


def _has_cache_control(messages: Any) -> bool:
    if not isinstance(messages, list):
        return False
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, list) and any(isinstance(b, Mapping) and "cache_control" in b for b in content):
            return True
    return False
