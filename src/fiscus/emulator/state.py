"""Everything one emulator instance remembers: counters, prompt caches, rate buckets, fault scripts.

All of it lives on the server's event loop and is changed only between awaits, so it needs no locks.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fiscus.emulator.batch_jobs import BatchBook
from fiscus.emulator.caching import TtlLru
from fiscus.emulator.config import EmulatorConfig
from fiscus.emulator.ratelimit import RateLimiter


@dataclass(slots=True)
class Stats:
    """What reached the emulated providers; served at GET /_emulator/stats."""

    requests: int = 0
    by_endpoint: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    streams: int = 0
    streams_cut: int = 0
    input_tokens: int = 0  # every prompt token, cached or not
    output_tokens: int = 0  # reasoning included
    reasoning_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def record_usage(
        self, *, input_tokens: int, output_tokens: int, reasoning: int = 0, read: int = 0, write: int = 0
    ) -> None:
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.reasoning_tokens += reasoning
        self.cache_read_tokens += read
        self.cache_write_tokens += write

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_endpoint": dict(self.by_endpoint),
            "by_status": {str(status): count for status, count in self.by_status.items()},
            "streams": self.streams,
            "streams_cut": self.streams_cut,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
        }


@dataclass(slots=True)
class GeminiCachedContent:
    model: str
    tokens: int
    expires_at: float


class EmulatorState:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.stats = Stats()
        self.prompt_cache = TtlLru(config.cache_entries, config.clock)
        self.limiter = RateLimiter(config.clock)
        self.rng = random.Random(config.seed)
        self.calls = 0  # provider calls so far, for the config's error_sequence
        self.sequences: Counter[str] = Counter()  # per x-emulator-sequence-key position
        self.gemini_caches: dict[str, GeminiCachedContent] = {}
        self.batches = BatchBook()

    def reset(self) -> None:
        """Forget counters, caches, buckets and scripts, as a fresh process would."""
        self.stats = Stats()
        self.prompt_cache.clear()
        self.limiter.clear()
        self.rng.seed(self.config.seed)
        self.calls = 0
        self.sequences.clear()
        self.gemini_caches.clear()
        self.batches.clear()
