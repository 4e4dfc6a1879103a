"""When to retry and how long to wait: retryable statuses, full-jitter backoff, `retry-after` headers."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# 408 and 409 are retried by the official SDKs too (timeouts and lock conflicts on the provider's side);
# 429 is rate limiting, 5xx server trouble, 529 Anthropic's "overloaded".
RETRYABLE_STATUSES = frozenset({408, 409, 429})


def is_retryable(status: int) -> bool:
    return status in RETRYABLE_STATUSES or status >= 500


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter: the n-th retry (n = 0, 1, ...) sleeps a uniform random time in
    [0, min(cap, base·2^n)], which spreads synchronised clients apart better than fixed or equal jitter.

    A provider's own `retry-after` wins over the jittered guess; one longer than `max_retry_after_s` means
    "not soon", and the caller gives up on this provider instead of holding the request open."""

    base_s: float = 0.5
    cap_s: float = 8.0
    max_retry_after_s: float = 60.0

    def delay(self, retry_number: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.cap_s, self.base_s * (2.0**retry_number)))


def retry_after_s(headers: Mapping[str, str], now: Callable[[], datetime] | None = None) -> float | None:
    """Seconds the provider asks us to wait: `retry-after-ms` (OpenAI, more precise) first, then `retry-after`
    as seconds or an HTTP date. None when absent or unreadable; never negative."""
    lowered = {k.lower(): v for k, v in headers.items()}
    ms = lowered.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now() if now is not None else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())
