"""Per-key request and token limits as continuously refilled buckets, as the providers describe theirs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

WINDOW_S = 60.0


@dataclass(slots=True)
class _Bucket:
    capacity: float
    level: float
    updated: float

    def refill(self, now: float) -> None:
        rate = self.capacity / WINDOW_S
        self.level = min(self.capacity, self.level + (now - self.updated) * rate)
        self.updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` is available (a full window if it never fits)."""
        if amount > self.capacity:
            return WINDOW_S
        return max(0.0, (amount - self.level) * WINDOW_S / self.capacity)

    def until_full(self) -> float:
        return (self.capacity - self.level) * WINDOW_S / self.capacity


@dataclass(slots=True)
class LimitState:
    """One limit's numbers after a check, for the provider's rate-limit headers."""

    limit: int
    remaining: int
    reset_s: float


@dataclass(slots=True)
class LimitResult:
    allowed: bool
    exceeded: str | None  # "requests" or "tokens" when refused
    retry_after_s: float
    requests: LimitState | None
    tokens: LimitState | None


class RateLimiter:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, str, int], _Bucket] = {}

    def _bucket(self, key: str, kind: str, capacity: int, now: float) -> _Bucket:
        slot = (key, kind, capacity)  # a changed limit starts a fresh bucket
        bucket = self._buckets.get(slot)
        if bucket is None:
            bucket = self._buckets[slot] = _Bucket(float(capacity), float(capacity), now)
        bucket.refill(now)
        return bucket

    def check(self, key: str, rpm: int | None, tpm: int | None, tokens: int) -> LimitResult:
        """Take one request and `tokens` tokens from the key's buckets, or refuse and say how long to wait."""
        now = self._clock()
        requests = self._bucket(key, "requests", rpm, now) if rpm else None
        token_bucket = self._bucket(key, "tokens", tpm, now) if tpm else None
        exceeded: str | None = None
        wait = 0.0
        if requests is not None and requests.level < 1:
            exceeded, wait = "requests", requests.wait_for(1)
        elif token_bucket is not None and token_bucket.level < tokens:
            exceeded, wait = "tokens", token_bucket.wait_for(tokens)
        if exceeded is None:
            if requests is not None:
                requests.level -= 1
            if token_bucket is not None:
                token_bucket.level -= tokens
        return LimitResult(
            allowed=exceeded is None,
            exceeded=exceeded,
            retry_after_s=wait,
            requests=_state(requests, rpm),
            tokens=_state(token_bucket, tpm),
        )

    def clear(self) -> None:
        self._buckets.clear()


def _state(bucket: _Bucket | None, limit: int | None) -> LimitState | None:
    if bucket is None or not limit:
        return None
    return LimitState(limit, max(0, int(bucket.level)), bucket.until_full())
