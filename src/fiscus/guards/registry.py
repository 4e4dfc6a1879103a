"""Breakers per agent, per provider/model and one global, shared by the SDK and the gateway; post-mortems
written on a trip.

`check(agent, provider=, model=)` answers before a call (the open breaker that refuses it, or None);
`record(...)` after it. The global and agent breakers watch spend rate; error rate is kept per provider/model
("model:openai/gpt-4o-mini") from provider-side failures only, so a failing model stops only its own calls and
a client's bad requests (4xx) stop nothing.
A trip writes the caller's session state as JSON under `postmortem_dir` and emits a `BreakerTripped` event.

With a `BreakerStateStore` every trip and close is saved there, and `check` takes the newer records other
processes saved, read at most once per `refresh_s`, so a breaker opened in one worker is open in all within
about that time while the hot path stays a dictionary lookup. Spend-rate and error-rate windows stay per
process: each worker sees its share of the traffic, and the ratio to its own median is the same.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fiscus.errors import FiscusError
from fiscus.events.guard_events import BreakerTripped
from fiscus.guards.breaker import BreakerConfig, BreakerState, CircuitBreaker, Trip
from fiscus.guards.record import BreakerRecord
from fiscus.guards.state import BreakerStateStore

log = logging.getLogger("fiscus.guards")

GLOBAL = "global"
MODEL_PREFIX = "model:"
DEFAULT_POSTMORTEM_DIR = Path(".fiscus/postmortems")


class BreakerRegistry:
    """`config` is the global breaker's (and every agent's unless `per_agent` is given); `agents` holds the
    settings of named agents. `state` shares trips and closes with other processes."""

    def __init__(
        self,
        config: BreakerConfig | None = None,
        *,
        per_agent: BreakerConfig | None = None,
        agents: Mapping[str, BreakerConfig] | None = None,
        clock: Callable[[], float] = time.time,
        postmortem_dir: str | Path | None = DEFAULT_POSTMORTEM_DIR,
        on_event: Callable[[object], None] | None = None,
        state: BreakerStateStore | None = None,
        refresh_s: float = 0.5,
    ) -> None:
        self.config = config or BreakerConfig()
        self.per_agent = per_agent or self.config
        self.agents = dict(agents or {})
        self._clock = clock
        self.postmortem_dir = Path(postmortem_dir) if postmortem_dir is not None else None
        self.on_event = on_event
        self.state = state
        self.refresh_s = refresh_s
        self._next_sync = float("-inf")
        self._state_failing = False
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {GLOBAL: CircuitBreaker(GLOBAL, self.config, clock)}
        self._scopes_of: dict[str | None, tuple[str, ...]] = {}
        self.events: list[BreakerTripped] = []

    def config_for(self, scope: str) -> BreakerConfig:
        if scope == GLOBAL:
            return self.config
        if scope.startswith(MODEL_PREFIX):  # a model's breaker watches its error rate; spend is the others'
            return replace(self.config, spend_rate_k=None)
        return self.agents.get(scope.removeprefix("agent:"), self.per_agent)

    @staticmethod
    def scope_of(agent: str | None) -> str:
        return f"agent:{agent}" if agent else GLOBAL

    @staticmethod
    def model_scope(provider: str, model: str) -> str:
        return f"{MODEL_PREFIX}{provider}/{model}"

    def breaker(self, scope: str) -> CircuitBreaker:
        with self._lock:
            return self._breaker(scope)

    def _breaker(self, scope: str) -> CircuitBreaker:  # under the lock
        found = self._breakers.get(scope)
        if found is None:
            found = self._breakers[scope] = CircuitBreaker(scope, self.config_for(scope), self._clock)
        return found

    def _scopes(self, agent: str | None) -> tuple[str, ...]:
        """The scopes a call of `agent` answers to: the global one, then the agent's (names kept, not rebuilt)."""
        scopes = self._scopes_of.get(agent)
        if scopes is None:
            scopes = (GLOBAL,) if not agent else (GLOBAL, self.scope_of(agent))
            if len(self._scopes_of) < 10_000:
                self._scopes_of[agent] = scopes
        return scopes

    def check(
        self, agent: str | None, *, provider: str | None = None, model: str | None = None
    ) -> CircuitBreaker | None:
        """The breaker that refuses a call for `agent` (to `provider`/`model`) now, or None when it may go out."""
        if self.state is not None and self._clock() >= self._next_sync:
            self.sync()
        breakers = self._breakers
        scopes = self._scopes(agent)
        if provider and model:
            scopes = (*scopes, self.model_scope(provider, model))
        with self._lock:
            for scope in scopes:
                breaker = breakers.get(scope)
                # A closed breaker allows without more ado (`allow` handles open and half-open).
                if breaker is not None and breaker._state is not BreakerState.CLOSED and not breaker.allow():
                    return breaker
        return None

    def record(
        self,
        agent: str | None,
        *,
        cost: Decimal = Decimal(0),
        ok: bool = True,
        state: dict[str, Any] | None = None,
        provider: str | None = None,
        model: str | None = None,
    ) -> list[BreakerTripped]:
        """A call finished; returns the trips it caused. `ok=False`: the provider failed it (5xx, 529, timeout,
        connection error), counted by the provider/model's breaker only (given `provider` and `model`)."""
        trips: list[Trip] = []
        changed: list[BreakerRecord] = []
        sharing = self.state is not None
        now = self._clock()
        scopes = [(scope, True) for scope in self._scopes(agent)]
        if provider and model:
            scopes.append((self.model_scope(provider, model), ok))
        with self._lock:
            for scope, outcome in scopes:
                breaker = self._breakers.get(scope) or self._breaker(scope)
                since = breaker.since
                trip = breaker.record(cost=cost, ok=outcome, now=now)
                if sharing and breaker.since != since:
                    changed.append(breaker.to_record())
                if trip is not None:
                    trips.append(trip)
        for record in changed:  # outside the lock: a store write may take a round trip
            self._share(record)
        return [self._announce(trip, state) for trip in trips] if trips else []

    def trip(
        self, agent: str | None, reason: str, message: str, *, state: dict[str, Any] | None = None
    ) -> BreakerTripped:
        """Open the agent's breaker (the global one when `agent` is None) on purpose."""
        breaker = self.breaker(self.scope_of(agent))
        with self._lock:
            trip = breaker.trip(reason, message)
            record = breaker.to_record() if self.state is not None else None
        if record is not None:
            self._share(record)
        return self._announce(trip, state)

    # -- shared state ---------------------------------------------------------------------------------------

    def sync(self) -> None:
        """Take the newer records other processes saved. A failing store leaves the local state as it is."""
        if self.state is None:
            return
        self._next_sync = self._clock() + self.refresh_s  # first, so concurrent callers do not all read
        try:
            records = self.state.load_all()
        except FiscusError as exc:
            self._store_failed(exc)
            return
        self._state_failing = False
        with self._lock:
            for record in records:
                found = self._breakers.get(record.scope)
                if found is None:
                    found = self._breakers[record.scope] = CircuitBreaker(
                        record.scope, self.config_for(record.scope), self._clock
                    )
                found.adopt(record)

    def _share(self, record: BreakerRecord) -> None:
        assert self.state is not None
        try:
            self.state.save(record)
        except FiscusError as exc:
            self._store_failed(exc)

    def _store_failed(self, exc: FiscusError) -> None:
        # Breakers keep working on local state; one warning per outage, not one per call.
        if not self._state_failing:
            log.warning("fiscus: breaker state unavailable, using this process's own: %s", exc)
        self._state_failing = True

    def close(self) -> None:
        if self.state is not None:
            self.state.close()

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
        if self.state is not None and self._clock() >= self._next_sync:
            self.sync()
        with self._lock:
            breakers = list(self._breakers.values())
        return [b.snapshot() for b in breakers]
