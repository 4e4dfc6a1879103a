"""Settings of one emulator instance. Every field can also be steered per request (see `steering`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


class ManualClock:
    """A clock that moves only when told to: inject it to expire caches or refill limits in tests."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(slots=True)
class EmulatorConfig:
    """How the emulated providers behave. Defaults give fast, fault-free, deterministic replies."""

    # Accepted keys; None accepts any non-empty key (the usual choice for tests and the demo).
    api_keys: frozenset[str] | None = None
    # Served model names; None echoes any name, otherwise unknown names get the provider's 404.
    allowed_models: frozenset[str] | None = None

    # Pacing: a fixed delay before the response starts, then per output token (streams and bodies alike).
    latency_ms: float = 0.0
    token_latency_ms: float = 0.0

    # Faults. `error_sequence` scripts the first calls across the whole process: (429, 429) makes the
    # first two provider calls fail with 429, later ones pass; 200 in the script lets a call through.
    error_rate: float = 0.0
    error_rate_status: int = 500
    error_sequence: tuple[int, ...] = ()
    retry_after_s: float = 1.0
    # Drop streamed responses after this many content deltas, before any usage is sent.
    stream_cut_after: int | None = None

    # Rate limits per API key, refilled continuously like the providers' token buckets.
    rpm_limit: int | None = None
    tpm_limit: int | None = None

    # Reply shape. `reply_tokens` is the visible length of a free answer; `output_tokens` forces the
    # reported output total (reasoning included); `reasoning_tokens` adds hidden reasoning.
    reply_tokens: int = 24
    output_tokens: int | None = None
    reasoning_tokens: int = 0
    # Answer with a call to the first offered tool whenever the request offers tools.
    tool_calls: bool = False

    # Prompt caching. A minimum of None takes each model's documented minimum (shaping.cache_minimums); a number
    # applies to every model of that provider. Gemini's implicit cache keeps a prefix this long unused.
    anthropic_min_cache_tokens: int | None = None
    openai_min_cache_tokens: int | None = None
    openai_cache_ttl_s: float = 300.0
    gemini_implicit_cache_ttl_s: float = 300.0
    gemini_cached_content_tokens: int = 1024  # for `cachedContent` names this instance did not create
    cache_entries: int = 100_000

    # Batch APIs: a job completes this long after it was created (on `clock`).
    batch_delay_ms: float = 300.0
    # Token counting: characters per token (4 by default); per model, e.g. {"claude-sonnet-4-5": 1} to count
    # one token per character as a tokenizer does on CJK text or base64. x-emulator-chars-per-token overrides.
    chars_per_token: int = 4
    chars_per_token_models: dict[str, int] = field(default_factory=dict)

    seed: int = 0
    # Monotonic seconds; inject a fake clock to test cache expiry and rate-limit refill.
    clock: Callable[[], float] = field(default=time.monotonic)

    def __post_init__(self) -> None:
        problems = [
            name
            for name, bad in (
                ("latency_ms", self.latency_ms < 0),
                ("token_latency_ms", self.token_latency_ms < 0),
                ("error_rate", not 0 <= self.error_rate <= 1),
                ("retry_after_s", self.retry_after_s < 0),
                ("stream_cut_after", self.stream_cut_after is not None and self.stream_cut_after < 0),
                ("rpm_limit", self.rpm_limit is not None and self.rpm_limit < 1),
                ("tpm_limit", self.tpm_limit is not None and self.tpm_limit < 1),
                ("reply_tokens", self.reply_tokens < 0),
                ("output_tokens", self.output_tokens is not None and self.output_tokens < 0),
                ("reasoning_tokens", self.reasoning_tokens < 0),
                ("cache_entries", self.cache_entries < 1),
                ("batch_delay_ms", self.batch_delay_ms < 0),
                ("chars_per_token", not 1 <= self.chars_per_token <= 16),
                ("chars_per_token_models", any(not 1 <= n <= 16 for n in self.chars_per_token_models.values())),
            )
            if bad
        ]
        if problems:
            raise ValueError(f"EmulatorConfig: out-of-range value for {', '.join(problems)}")
