"""One process's view of the account-wide breaker windows: what it last read from `BreakerWindows` plus what it
added since, exchanged at most every `refresh_s`.

The hot path stays in memory: `add` puts a settled call's cost and outcome into pending deltas and `figures`
answers from the last totals plus those deltas, so the process that sees a burst cross the line trips at once
on what it knows, and every other process sees the others' share within `refresh_s`. `exchange` is the one
round trip: deltas out, totals back; when it fails the deltas are kept for the next one (nothing is dropped
or counted twice: a failed exchange added nothing).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from statistics import median

from fiscus.guards.breaker import BreakerConfig
from fiscus.guards.windows import BUCKET_S, BreakerWindows, Delta, Horizon, Totals
from fiscus.money import NANOS_PER_USD, from_nanos

_NO_TOTALS = Totals()


@dataclass(frozen=True, slots=True)
class Figures:
    """A scope's account-wide figures now: this hour's spend, the median of the past hours with spend (None
    below `min_history_hours`), and the calls and failures in the error window."""

    hour_spend: Decimal
    baseline: Decimal | None
    calls: int
    failures: int

    def ratio(self) -> Decimal | None:
        if self.baseline is None or not self.baseline:
            return None
        return self.hour_spend / self.baseline

    def to_dict(self) -> dict[str, object]:
        return {
            "hour_spend_usd": format(self.hour_spend, "f"),
            "median_hourly_usd": None if self.baseline is None else format(self.baseline, "f"),
            "window_calls": self.calls,
            "window_failures": self.failures,
        }


class AccountWindows:
    def __init__(
        self,
        windows: BreakerWindows,
        *,
        history_hours: int,
        error_window_s: float,
        refresh_s: float,
        clock: Callable[[], float],
    ) -> None:
        self.windows = windows
        self.history_hours = history_hours
        self.error_window_s = error_window_s
        self.refresh_s = refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[str, Delta] = {}
        self._totals: dict[str, Totals] = {}
        self._medians: dict[tuple[str, int, int, int], Decimal | None] = {}  # cached per totals read
        self._generation = 0
        self.next_exchange = float("-inf")

    def add(self, scope: str, *, spend_nanos: int = 0, calls: int = 0, failures: int = 0) -> None:
        with self._lock:
            delta = self._pending.get(scope)
            if delta is None:
                delta = self._pending[scope] = Delta()
            delta.spend_nanos += spend_nanos
            delta.calls += calls
            delta.failures += failures

    def known(self, scope: str) -> bool:
        return scope in self._totals

    def due(self, now: float) -> bool:
        return now >= self.next_exchange

    def exchange(self, scopes: list[str]) -> None:
        """Send the pending deltas, read back the totals of `scopes` (and of every scope seen so far). Raises
        `StoreError`; the deltas then stay pending."""
        now = self._clock()
        self.next_exchange = now + self.refresh_s  # first, so concurrent callers do not all exchange
        with self._lock:
            sent, self._pending = {s: d for s, d in self._pending.items() if d}, {}
            wanted = list(dict.fromkeys([*self._totals, *scopes]))
        horizon = Horizon.at(now, history_hours=self.history_hours, error_window_s=self.error_window_s)
        try:
            totals = self.windows.exchange(sent, wanted, horizon)
        except BaseException:
            with self._lock:  # not added: keep them for the next exchange
                for scope, delta in sent.items():
                    held = self._pending.setdefault(scope, Delta())
                    held.spend_nanos += delta.spend_nanos
                    held.calls += delta.calls
                    held.failures += delta.failures
                for scope in wanted:  # judged on what this process knows until the store answers again
                    self._totals.setdefault(scope, _NO_TOTALS)
            raise
        with self._lock:
            self._totals.update(totals)
            self._generation += 1
            self._medians.clear()

    def stale(self, scope: str) -> None:
        """The scope closed elsewhere (a reset, a probe): read its figures again before judging on them."""
        with self._lock:
            self._totals.pop(scope, None)

    def forget(self, scope: str) -> None:
        """A reset: the scope's figures start again from nothing, here and (the caller clears) in the store."""
        with self._lock:
            self._pending.pop(scope, None)
            self._totals.pop(scope, None)

    def figures(self, scope: str, config: BreakerConfig, now: float) -> Figures:
        hour, bucket = int(now // 3600), int(now // BUCKET_S)
        with self._lock:
            totals = self._totals.get(scope, _NO_TOTALS)
            pending = self._pending.get(scope)
            key = (scope, hour, self._generation, config.min_history_hours)
            if key in self._medians:
                baseline = self._medians[key]
            else:
                oldest = hour - config.history_hours
                past = [n for h, n in totals.hourly.items() if oldest <= h < hour and n > 0]
                baseline = (
                    median([Decimal(n) for n in past]) / NANOS_PER_USD
                    if len(past) >= config.min_history_hours
                    else None
                )
                self._medians[key] = baseline
            spend = totals.hourly.get(hour, 0) + (pending.spend_nanos if pending else 0)
            first = bucket - int(config.error_window_s // BUCKET_S)
            calls = failures = 0
            for b, (c, f) in totals.buckets.items():
                if b >= first:
                    calls += c
                    failures += f
            if pending is not None:
                calls += pending.calls
                failures += pending.failures
        return Figures(from_nanos(spend), baseline, calls, failures)
