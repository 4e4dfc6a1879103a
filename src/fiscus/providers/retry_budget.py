"""A retry budget per provider: retries may be at most a fixed share of recent requests, so an outage upstream
cannot turn into a retry storm that multiplies the load exactly when the provider is weakest."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable


class RetryBudget:
    """Sliding-window budget: over the last `window_s` seconds, retries may number at most
    `ratio` × first attempts + `min_retries` (the floor lets a quiet provider still retry a lone failure).

    `record_request()` on every first attempt, `try_spend()` before every retry; a refused retry means the
    caller returns the upstream error at once."""

    def __init__(
        self, ratio: float, *, window_s: float = 10.0, min_retries: int = 2, clock: Callable[[], float]
    ) -> None:
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"retry budget ratio must be between 0 and 1, got {ratio}")
        self.ratio = ratio
        self.window_s = window_s
        self.min_retries = min_retries
        self._clock = clock
        self._requests: deque[float] = deque()
        self._retries: deque[float] = deque()

    def _prune(self, now: float) -> None:
        horizon = now - self.window_s
        for times in (self._requests, self._retries):
            while times and times[0] <= horizon:
                times.popleft()

    def record_request(self) -> None:
        now = self._clock()
        self._prune(now)
        self._requests.append(now)

    def try_spend(self) -> bool:
        """Take one retry from the budget if there is room; False means: do not retry."""
        now = self._clock()
        self._prune(now)
        if len(self._retries) + 1 > self.ratio * len(self._requests) + self.min_retries:
            return False
        self._retries.append(now)
        return True

    @property
    def recent(self) -> tuple[int, int]:
        """(requests, retries) in the current window."""
        self._prune(self._clock())
        return len(self._requests), len(self._retries)
