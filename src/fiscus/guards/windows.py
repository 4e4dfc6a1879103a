"""Account-wide breaker windows: the spend-rate and error-rate figures every worker and process adds to and reads.

A breaker watching its own process sees its slice of the traffic: with four workers or twenty SDK processes an
account-wide burst never crosses "3 × the median hourly spend" in any one of them. `BreakerWindows` keeps the
figures in the budget store's backend instead (`memory://` for one process, `sqlite:///breakers.db` for the
processes of one host, `redis://…` across hosts), one per breaker scope:

- spend per hour, in integer nano-dollars (Redis adds integers exactly; `fiscus.money`), kept `history_hours`;
- calls and failures per `BUCKET_S`-second bucket, kept for the error window (`error_window_s`).

A process does not write on every call: it adds to its own pending deltas and exchanges them at most every
`refresh_s` (`fiscus.guards.account`): one round trip sends the deltas and reads back the totals. It also holds
the half-open probe lease, so only one probe is out at a time across every worker.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fiscus.backends import Backend, Backends

BUCKET_S = 10  # the error window's resolution
ACCEPTED = ("memory://", "sqlite:///path.db", "redis://host:port/db?prefix=p", "rediss://…")


@dataclass(slots=True)
class Delta:
    """What a process added to one scope since its last exchange."""

    spend_nanos: int = 0
    calls: int = 0
    failures: int = 0

    def __bool__(self) -> bool:
        return bool(self.spend_nanos or self.calls)


@dataclass(frozen=True, slots=True)
class Totals:
    """One scope's shared figures: spend per hour (hour number → nano-dollars) and (calls, failures) per bucket."""

    hourly: Mapping[int, int] = field(default_factory=dict)
    buckets: Mapping[int, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Horizon:
    """What an exchange keeps: hours from `oldest_hour` on, error buckets from `oldest_bucket` on."""

    hour: int
    oldest_hour: int
    bucket: int
    oldest_bucket: int

    @classmethod
    def at(cls, now: float, *, history_hours: int, error_window_s: float) -> Horizon:
        hour, bucket = int(now // 3600), int(now // BUCKET_S)
        return cls(hour, hour - history_hours, bucket, bucket - int(error_window_s // BUCKET_S))


class BreakerWindows(ABC):
    """Shared spend and error windows per breaker scope, and the half-open probe lease. Failures raise
    `StoreError`; the registry then judges on what it last read plus its own deltas."""

    url: str = ""

    @abstractmethod
    def exchange(self, deltas: Mapping[str, Delta], scopes: list[str], horizon: Horizon) -> dict[str, Totals]:
        """Add `deltas` (spend to the horizon's hour, calls to its bucket), drop what fell out of the horizon,
        and return the totals of `scopes` (those of `deltas` included)."""

    @abstractmethod
    def claim_probe(self, scope: str, holder: str, *, now: float, lease_s: float) -> bool:
        """Take the scope's half-open probe lease for `lease_s` unless another holder has it; True if taken."""

    @abstractmethod
    def release_probe(self, scope: str, holder: str) -> None:
        """Give the lease back (only `holder`'s own)."""

    @abstractmethod
    def clear(self, scope: str) -> None:
        """Forget a scope's figures (an operator's reset: the burst that tripped it is accounted for)."""

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release connections."""


class MemoryBreakerWindows(BreakerWindows):
    """Windows in this process only: every registry given the same instance shares them."""

    url = "memory://"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hourly: dict[str, dict[int, int]] = {}
        self._buckets: dict[str, dict[int, list[int]]] = {}
        self._probes: dict[str, tuple[str, float]] = {}

    def exchange(self, deltas: Mapping[str, Delta], scopes: list[str], horizon: Horizon) -> dict[str, Totals]:
        with self._lock:
            for scope, delta in deltas.items():
                if delta.spend_nanos:
                    hours = self._hourly.setdefault(scope, {})
                    hours[horizon.hour] = hours.get(horizon.hour, 0) + delta.spend_nanos
                if delta.calls:
                    bucket = self._buckets.setdefault(scope, {}).setdefault(horizon.bucket, [0, 0])
                    bucket[0] += delta.calls
                    bucket[1] += delta.failures
            found: dict[str, Totals] = {}
            for scope in dict.fromkeys([*deltas, *scopes]):
                hours = self._hourly.get(scope, {})
                for old in [h for h in hours if h < horizon.oldest_hour]:
                    del hours[old]
                buckets = self._buckets.get(scope, {})
                for old in [b for b in buckets if b < horizon.oldest_bucket]:
                    del buckets[old]
                found[scope] = Totals(dict(hours), {b: (c, f) for b, (c, f) in buckets.items()})
            return found

    def claim_probe(self, scope: str, holder: str, *, now: float, lease_s: float) -> bool:
        with self._lock:
            held = self._probes.get(scope)
            if held is not None and held[0] != holder and held[1] > now:
                return False
            self._probes[scope] = (holder, now + lease_s)
            return True

    def release_probe(self, scope: str, holder: str) -> None:
        with self._lock:
            held = self._probes.get(scope)
            if held is not None and held[0] == holder:
                del self._probes[scope]

    def clear(self, scope: str) -> None:
        with self._lock:
            self._hourly.pop(scope, None)
            self._buckets.pop(scope, None)
            self._probes.pop(scope, None)


BREAKER_WINDOWS: Backends[BreakerWindows] = Backends(
    "breaker windows",
    {
        "memory": Backend("fiscus.guards.windows:MemoryBreakerWindows", "nothing"),
        "sqlite": Backend("fiscus.stores.breaker_windows_sqlite:SqliteBreakerWindows", "path"),
        "redis": Backend("fiscus.stores.breaker_windows_redis:RedisBreakerWindows.from_url", "url"),
        "rediss": Backend("fiscus.stores.breaker_windows_redis:RedisBreakerWindows.from_url", "url"),
    },
    accepted=ACCEPTED,
)


def open_breaker_windows(url: str, **options: Any) -> BreakerWindows:
    """Breaker windows by URL: the same URL as the breaker state (`fiscus.guards.state`)."""
    return BREAKER_WINDOWS.open(url, **options)
