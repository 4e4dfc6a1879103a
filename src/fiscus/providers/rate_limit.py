"""Per-provider RPM/TPM limiting, kept a margin under the provider's own limits so fiscus slows down before
the provider starts answering 429 (whose retries would cost time and retry budget)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable

from fiscus.providers.messages import RateLimitedError

WINDOW_S = 60.0


class ProviderRateLimiter:
    """A sliding one-minute log of admitted requests and their estimated tokens. `acquire()` admits at once,
    waits up to `max_wait_s` for the window to free room, or raises `RateLimitedError` saying when to retry.

    Limits are `floor(limit × (1 - headroom))`; a request estimated above the whole TPM allowance is still
    admitted into an empty window (refusing it forever would help no one; the provider decides)."""

    def __init__(
        self,
        provider: str,
        *,
        rpm: int | None,
        tpm: int | None,
        headroom: float,
        max_wait_s: float,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        if not 0.0 <= headroom < 1.0:
            raise ValueError(f"rate limit headroom must be in [0, 1), got {headroom}")
        self.provider = provider
        self.rpm = max(1, math.floor(rpm * (1 - headroom))) if rpm else None
        self.tpm = max(1, math.floor(tpm * (1 - headroom))) if tpm else None
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._sleep = sleep
        self._log: deque[tuple[float, int]] = deque()
        self._tokens = 0

    @property
    def limited(self) -> bool:
        return self.rpm is not None or self.tpm is not None

    def _prune(self, now: float) -> None:
        horizon = now - WINDOW_S
        while self._log and self._log[0][0] <= horizon:
            self._tokens -= self._log.popleft()[1]

    def _wait_needed(self, now: float, tokens: int) -> float:
        """Seconds until a request of `tokens` fits; 0 when it fits now."""
        wait = 0.0
        if self.rpm is not None and len(self._log) >= self.rpm:
            wait = self._log[len(self._log) - self.rpm][0] + WINDOW_S - now
        if self.tpm is not None and self._log and self._tokens + tokens > self.tpm:
            # Free the oldest entries until the request fits (or the window is empty).
            freed = self._tokens
            frees_at = now
            for when, used in self._log:
                freed -= used
                frees_at = when + WINDOW_S
                if freed + tokens <= self.tpm:
                    break
            wait = max(wait, frees_at - now)
        return max(0.0, wait)

    async def acquire(self, tokens: int = 0) -> None:
        if not self.limited:
            return
        waited = 0.0
        while True:
            now = self._clock()
            self._prune(now)
            wait = self._wait_needed(now, tokens)
            if wait <= 0.0:
                self._log.append((now, tokens))
                self._tokens += tokens
                return
            if waited + wait > self.max_wait_s:
                raise RateLimitedError(self._describe(wait), retry_after_s=wait)
            await self._sleep(wait)
            waited += wait

    def _describe(self, wait: float) -> str:
        limits = []
        if self.rpm is not None:
            limits.append(f"{self.rpm} requests/min")
        if self.tpm is not None:
            limits.append(f"{self.tpm} tokens/min")
        return (
            f"provider {self.provider!r} is at fiscus's limit of {' and '.join(limits)} "
            f"(kept under the provider's own); retry in {wait:.1f} s"
        )
