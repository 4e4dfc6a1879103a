"""Circuit breaker: closed → open → half-open → closed, as a transition table. Pure; the clock is injected.

A breaker trips on budget exhaustion, on a spend rate above `spend_rate_k` × the rolling median hourly
spend, on an error rate, or when told to (a loop). While open every call is refused at once, without
reaching a provider; after `cooldown_s` it lets `half_open_probes` probes through (half-open): that many
successes close it, one failure opens it again.

`since` orders a breaker's trips and closes across processes: `to_record()` gives the state to share after
one, `adopt()` takes a newer one recorded elsewhere (see `fiscus.guards.state`). Half-open is not shared:
every process derives it from the recorded end of the cooldown.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from statistics import median
from typing import Any

from fiscus.errors import ConfigError
from fiscus.guards.record import BreakerRecord

_ZERO = Decimal(0)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerInput(StrEnum):
    TRIP = "trip"
    COOLDOWN_ELAPSED = "cooldown_elapsed"
    SUCCESS = "success"
    FAILURE = "failure"


# (state, input) → next state. A pair missing from the table leaves the state unchanged.
TRANSITIONS: dict[tuple[BreakerState, BreakerInput], BreakerState] = {
    (BreakerState.CLOSED, BreakerInput.TRIP): BreakerState.OPEN,
    (BreakerState.OPEN, BreakerInput.TRIP): BreakerState.OPEN,  # tripping again restarts the cooldown
    (BreakerState.OPEN, BreakerInput.COOLDOWN_ELAPSED): BreakerState.HALF_OPEN,
    (BreakerState.HALF_OPEN, BreakerInput.SUCCESS): BreakerState.CLOSED,
    (BreakerState.HALF_OPEN, BreakerInput.FAILURE): BreakerState.OPEN,
    (BreakerState.HALF_OPEN, BreakerInput.TRIP): BreakerState.OPEN,
}


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """`spend_rate_k`: trip when this hour's spend exceeds k × the median of past hourly spends (needs
    `min_history_hours` past hours with spend). `error_rate`: trip when that share of the last
    `error_window` calls failed (from `min_calls` calls on). `None` turns a trigger off."""

    cooldown_s: float = 300.0
    spend_rate_k: Decimal | None = Decimal(3)
    min_history_hours: int = 3
    history_hours: int = 24 * 7
    error_rate: float | None = 0.5
    error_window: int = 20
    min_calls: int = 10
    half_open_probes: int = 1
    error_window_s: float = 120.0  # the account-wide error window (shared windows count time, not calls)

    def __post_init__(self) -> None:
        if self.cooldown_s < 0:
            raise ConfigError(f"breaker cooldown_s must be ≥ 0, got {self.cooldown_s}")
        if self.spend_rate_k is not None and self.spend_rate_k <= 0:
            raise ConfigError(f"breaker spend_rate_k must be > 0, got {self.spend_rate_k}")
        if self.error_rate is not None and not 0 < self.error_rate <= 1:
            raise ConfigError(f"breaker error_rate must be in (0, 1], got {self.error_rate}")
        if self.error_window_s <= 0:
            raise ConfigError(f"breaker error_window_s must be > 0, got {self.error_window_s}")
        if self.half_open_probes < 1:
            raise ConfigError(f"breaker half_open_probes must be ≥ 1, got {self.half_open_probes}")


@dataclass(frozen=True, slots=True)
class Trip:
    """Why a breaker opened and until when (epoch seconds)."""

    scope: str
    reason: str
    message: str
    opened_at: float
    reopens_at: float
    details: dict[str, Any]


class CircuitBreaker:
    """One breaker for one scope ("global", "agent:researcher"). Not thread-safe by itself; the registry locks."""

    def __init__(self, scope: str, config: BreakerConfig | None = None, clock: Callable[[], float] = time.time):
        self.scope = scope
        self.config = config or BreakerConfig()
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._reopens_at = 0.0
        self._probes_out = 0  # half-open probes sent whose outcome is not recorded yet
        self._probe_successes = 0
        self.since = 0.0  # when it last opened or closed (0: never), to order records shared between processes
        self.last_trip: Trip | None = None
        self.trips = 0
        self._hourly: dict[int, Decimal] = {}
        # Per-call bookkeeping kept O(1): the past hours' median is recomputed only when the hour changes (past
        # buckets change only through a record for another hour), failures are counted as outcomes come and go.
        self._pruned_hour: int | None = None
        self._baseline_hour: int | None = None
        self._baseline: Decimal | None = None
        self._outcomes: deque[bool] = deque(maxlen=self.config.error_window)
        self._failures = 0

    def _move(self, signal: BreakerInput) -> BreakerState:
        self._state = TRANSITIONS.get((self._state, signal), self._state)
        return self._state

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() >= self._reopens_at:
            self._move(BreakerInput.COOLDOWN_ELAPSED)
            self._probes_out = self._probe_successes = 0
        return self._state

    def allow(self) -> bool:
        """May a call go out now? Half-open lets `half_open_probes` probes out until their outcomes are recorded."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and self._probes_out < self.config.half_open_probes:
            self._probes_out += 1
            return True
        return False

    def record(self, *, cost: Decimal = Decimal(0), ok: bool = True, now: float | None = None) -> Trip | None:
        """A call finished: add its cost to the hour's bucket and its outcome to the error window. `now`: the
        clock's reading when the caller already took it (a registry records one call in several breakers).
        Runs after every call, so the closed state's checks are written out here rather than in helpers."""
        if now is None:
            now = self._clock()
        hour = int(now // 3600)
        if cost:
            hourly = self._hourly
            hourly[hour] = hourly.get(hour, _ZERO) + cost
            if hour != self._baseline_hour:  # a past hour's bucket changed under the cached median
                self._baseline_hour = None
            if hour != self._pruned_hour:  # pruning again within the same hour finds nothing more
                self._prune(hour)
        outcomes = self._outcomes
        if len(outcomes) == outcomes.maxlen and not outcomes[0]:
            self._failures -= 1  # the oldest outcome, a failure, falls out of the window
        outcomes.append(ok)
        if not ok:
            self._failures += 1
        state = self._state
        if state is BreakerState.CLOSED:
            config = self.config
            k = config.spend_rate_k
            # Only a cost can raise this hour's spend; the baseline moves only when the hour does.
            if cost and k is not None:
                baseline = self._baseline if hour == self._baseline_hour else self._median_before(hour)
                if baseline is not None and self._hourly[hour] > k * baseline:
                    return self._spend_rate_trip(hour, k, baseline, now)
            threshold, failures, calls = config.error_rate, self._failures, len(outcomes)
            if failures and threshold is not None and calls >= config.min_calls and failures / calls >= threshold:
                return self._error_rate_trip(now)
            return None
        if state is BreakerState.HALF_OPEN:
            return self.probe_done(ok, now)
        return None

    def probe_done(self, ok: bool, now: float) -> Trip | None:
        """A half-open probe's outcome: enough successes close the breaker, one failure opens it again."""
        self._probes_out = max(self._probes_out - 1, 0)
        if not ok:
            return self._open("probe_failed", "the half-open probe failed", {}, now)
        self._probe_successes += 1
        if self._probe_successes >= self.config.half_open_probes:
            self._move(BreakerInput.SUCCESS)
            self._clear_outcomes()
            self.since = now
        return None

    def judge(
        self, *, hour_spend: Decimal, baseline: Decimal | None, calls: int, failures: int, now: float
    ) -> Trip | None:
        """The closed state's checks on account-wide figures (`fiscus.guards.account`) rather than this
        process's own windows: this hour's spend against k × the median, failures in the error window."""
        if self._state is not BreakerState.CLOSED:
            return None
        config = self.config
        k = config.spend_rate_k
        if k is not None and baseline is not None and hour_spend > k * baseline:
            return self._open(
                "spend_rate",
                f"account-wide spend this hour ${hour_spend} is above {k} × the median hourly spend ${baseline}",
                {"hour_spend_usd": str(hour_spend), "median_hourly_usd": str(baseline), "k": str(k)},
                now,
            )
        threshold = config.error_rate
        if failures and threshold is not None and calls >= config.min_calls and failures / calls >= threshold:
            return self._open(
                "error_rate",
                f"{failures} of {calls} calls failed in the last {config.error_window_s:g} s",
                {"failures": failures, "calls": calls, "threshold": threshold, "window_s": config.error_window_s},
                now,
            )
        return None

    def reset(self, now: float) -> None:
        """Close it by an operator's hand: outcomes and probes start again."""
        self._state = BreakerState.CLOSED
        self._probes_out = self._probe_successes = 0
        self._clear_outcomes()
        self.since = now

    def trip(self, reason: str, message: str, details: dict[str, Any] | None = None) -> Trip:
        """Open the breaker on purpose (budget exhausted, loop detected)."""
        return self._open(reason, message, details or {}, self._clock())

    def _open(self, reason: str, message: str, details: dict[str, Any], now: float) -> Trip:
        self._move(BreakerInput.TRIP)
        self._reopens_at = now + self.config.cooldown_s
        self._probes_out = self._probe_successes = 0
        self.since = now
        self.trips += 1
        self.last_trip = Trip(self.scope, reason, message, now, now + self.config.cooldown_s, details)
        return self.last_trip

    def _clear_outcomes(self) -> None:
        self._outcomes.clear()
        self._failures = 0

    def _median_before(self, hour: int) -> Decimal | None:
        """The median spend of the hours other than `hour` that had spend; None below `min_history_hours`."""
        if hour != self._baseline_hour:
            past = [spend for h, spend in self._hourly.items() if h != hour and spend > 0]
            self._baseline = median(past) if len(past) >= self.config.min_history_hours else None
            self._baseline_hour = hour
        return self._baseline

    def _spend_rate_trip(self, hour: int, k: Decimal, baseline: Decimal, now: float) -> Trip:
        current = self._hourly[hour]
        return self._open(
            "spend_rate",
            f"spend this hour ${current} is above {k} × the median hourly spend ${baseline}",
            {"hour_spend_usd": str(current), "median_hourly_usd": str(baseline), "k": str(k)},
            now,
        )

    def _error_rate_trip(self, now: float) -> Trip:
        failures, calls = self._failures, len(self._outcomes)
        return self._open(
            "error_rate",
            f"{failures} of the last {calls} calls failed",
            {"failures": failures, "calls": calls, "threshold": self.config.error_rate},
            now,
        )

    def _prune(self, hour: int) -> None:
        self._pruned_hour = hour
        oldest = hour - self.config.history_hours
        for h in [h for h in self._hourly if h < oldest]:
            del self._hourly[h]
        self._baseline_hour = None  # buckets left the history (or a record came in for another hour)

    def to_record(self) -> BreakerRecord:
        """The state to share after a trip or a close."""
        trip = self.last_trip
        is_open = self._state is not BreakerState.CLOSED
        return BreakerRecord(
            scope=self.scope,
            state=BreakerState.OPEN if is_open else BreakerState.CLOSED,
            since=self.since,
            reason=trip.reason if trip and is_open else None,
            message=trip.message if trip and is_open else None,
            reopens_at=self._reopens_at if is_open else None,
            trips=self.trips,
            details=dict(trip.details) if trip and is_open else {},
        )

    def adopt(self, record: BreakerRecord, *, force: bool = False) -> bool:
        """Take a state recorded by another process when it is newer than this breaker's own (or, `force`,
        an earlier trip of the same burst); True if taken. It is set, not reached through the table: the other
        process already made that transition."""
        if record.since <= self.since and not force:
            return False
        if force:
            self.trips = max(self.trips - 1, 0)  # this process's own trip of the burst did not happen
        self.since = record.since
        self.trips = max(self.trips, record.trips)
        self._probes_out = self._probe_successes = 0
        if record.state == BreakerState.CLOSED:
            self._state = BreakerState.CLOSED
            self._clear_outcomes()
            return True
        self._state = BreakerState.OPEN
        self._reopens_at = record.reopens_at if record.reopens_at is not None else record.since
        self.last_trip = Trip(
            self.scope,
            record.reason or "unknown",
            record.message or "opened elsewhere",
            record.since,
            self._reopens_at,
            dict(record.details),
        )
        return True

    def snapshot(self) -> dict[str, Any]:
        state = self.state
        trip = self.last_trip
        return {
            "scope": self.scope,
            "state": str(state),
            "since": self.since or None,
            "trips": self.trips,
            "reason": trip.reason if trip and state is not BreakerState.CLOSED else None,
            "reopens_at": trip.reopens_at if trip and state is BreakerState.OPEN else None,
            "hourly_spend_usd": {str(h * 3600): str(v) for h, v in sorted(self._hourly.items())[-24:]},
        }
