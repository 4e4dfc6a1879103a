"""Breakers per agent and one global, shared by the SDK and the gateway; post-mortems written on a trip.

`check(agent)` answers before a call (the open breaker that refuses it, or None); `record(...)` after it.
A trip writes the caller's session state as JSON under `postmortem_dir` and emits a `BreakerTripped` event.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fiscus.events.guard_events import BreakerTripped
from fiscus.guards.breaker import BreakerConfig, CircuitBreaker, Trip

GLOBAL = "global"
DEFAULT_POSTMORTEM_DIR = Path(".fiscus/postmortems")


class BreakerRegistry:
    def __init__(
        self,
        config: BreakerConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        postmortem_dir: str | Path | None = DEFAULT_POSTMORTEM_DIR,
        on_event: Callable[[object], None] | None = None,
    ) -> None:
        self.config = config or BreakerConfig()
        self._clock = clock
        self.postmortem_dir = Path(postmortem_dir) if postmortem_dir is not None else None
        self.on_event = on_event
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {GLOBAL: CircuitBreaker(GLOBAL, self.config, clock)}
        self.events: list[BreakerTripped] = []

    @staticmethod
    def scope_of(agent: str | None) -> str:
        return f"agent:{agent}" if agent else GLOBAL

    def breaker(self, scope: str) -> CircuitBreaker:
        with self._lock:
            found = self._breakers.get(scope)
            if found is None:
                found = self._breakers[scope] = CircuitBreaker(scope, self.config, self._clock)
            return found

    def check(self, agent: str | None) -> CircuitBreaker | None:
        """The breaker that refuses a call for `agent` now, or None when the call may go out."""
        scopes = (GLOBAL,) if not agent else (GLOBAL, self.scope_of(agent))
        with self._lock:
            for scope in scopes:
                breaker = self._breakers.get(scope)
                if breaker is not None and not breaker.allow():
                    return breaker
        return None

    def record(
        self, agent: str | None, *, cost: Decimal = Decimal(0), ok: bool = True, state: dict[str, Any] | None = None
    ) -> list[BreakerTripped]:
        """A call finished; returns the trips it caused (global and/or the agent's)."""
        trips: list[Trip] = []
        scopes = (GLOBAL,) if not agent else (GLOBAL, self.scope_of(agent))
        for scope in scopes:
            breaker = self.breaker(scope)
            with self._lock:
                trip = breaker.record(cost=cost, ok=ok)
            if trip is not None:
                trips.append(trip)
        return [self._announce(trip, state) for trip in trips]

    def trip(
        self, agent: str | None, reason: str, message: str, *, state: dict[str, Any] | None = None
    ) -> BreakerTripped:
        """Open the agent's breaker (the global one when `agent` is None) on purpose."""
        breaker = self.breaker(self.scope_of(agent))
        with self._lock:
            trip = breaker.trip(reason, message)
        return self._announce(trip, state)

    def _announce(self, trip: Trip, state: dict[str, Any] | None) -> BreakerTripped:
        path = self._write_postmortem(trip, state) if state is not None else None
        event = BreakerTripped(
            scope=trip.scope,
            reason=trip.reason,
            message=trip.message,
            reopens_at=datetime.fromtimestamp(trip.reopens_at, UTC),
            postmortem_path=str(path) if path else None,
            details=dict(trip.details),
        )
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)
        return event

    def _write_postmortem(self, trip: Trip, state: dict[str, Any]) -> Path | None:
        if self.postmortem_dir is None:
            return None
        self.postmortem_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.fromtimestamp(trip.opened_at, UTC).strftime("%Y%m%dT%H%M%S")
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in trip.scope)
        path = self.postmortem_dir / f"{stamp}-{safe}-{trip.reason}-{time.time_ns() % 10**9}.json"
        body = {"scope": trip.scope, "reason": trip.reason, "message": trip.message, "details": trip.details}
        body["session"] = state
        path.write_text(json.dumps(body, indent=2, default=str), encoding="utf-8")
        return path

    def snapshot(self) -> list[dict[str, Any]]:
        """Every breaker's state, for `fiscus budgets status` and /metrics."""
        with self._lock:
            breakers = list(self._breakers.values())
        return [b.snapshot() for b in breakers]
