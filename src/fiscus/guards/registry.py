"""Breakers per agent, per provider/model and one global, shared by the SDK and the gateway; post-mortems
written on a trip.

`check(agent, provider=, model=)` answers before a call (the open breaker that refuses it, or None);
`record(...)` after it. The global and agent breakers watch spend rate; error rate is kept per provider/model
("model:openai/gpt-4o-mini") from provider-side failures only, so a failing model stops only its own calls and
a client's bad requests (4xx) stop nothing.
A trip writes the caller's session state as JSON under `postmortem_dir` and emits a `BreakerTripped` event.

A key's breaker ("key:<id>", given `key`) counts every failed call of that key, whatever failed it: a stolen
key firing failing requests opens its own breaker and no other.

With a `BreakerStateStore` every trip and close is saved there, and `check` takes the newer records other
processes saved, read at most once per `refresh_s`, so a breaker opened in one worker is open in all within
about that time while the hot path stays a dictionary lookup. With `BreakerWindows` the spend-rate and
error-rate windows are account-wide too (`fiscus.guards.account`): every worker and SDK process adds to the
same figures, so a burst split across them trips the breaker its sum crosses; the half-open probe is a lease
in the same store, one probe out at a time across all of them. Without windows each process judges its own.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fiscus.errors import FiscusError
from fiscus.events.guard_events import BreakerTripped
from fiscus.guards.account import AccountWindows, Figures
from fiscus.guards.breaker import BreakerConfig, BreakerState, CircuitBreaker, Trip
from fiscus.guards.postmortem import write_postmortem
from fiscus.guards.record import BreakerRecord
from fiscus.guards.sharing import AccountSharing
from fiscus.guards.state import BreakerStateStore
from fiscus.guards.windows import BreakerWindows

log = logging.getLogger("fiscus.guards")

GLOBAL = "global"
MODEL_PREFIX = "model:"
KEY_PREFIX = "key:"
NOTE_PREFIX = "~"  # records in the breaker state that are notes to every process, not breakers
DEFAULT_POSTMORTEM_DIR = Path(".fiscus/postmortems")


def key_defaults(config: BreakerConfig) -> BreakerConfig:
    """A virtual key's breaker unless configured: no spend rate (the agents' and the global one watch spend),
    open when 80 % of at least 50 calls in the error window failed, for whatever reason. Higher than a model's
    bar, because a client's own bad requests count here: ten 404s are a bug, thousands are a stolen key."""
    return replace(config, spend_rate_k=None, error_rate=0.8, min_calls=50, error_window=50)


class BreakerRegistry(AccountSharing):
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
        windows: BreakerWindows | None = None,
        per_key: BreakerConfig | None = None,
        postmortem_text: bool = False,
    ) -> None:
        self.config = config or BreakerConfig()
        self.per_agent = per_agent or self.config
        self.agents = dict(agents or {})
        self.per_key = per_key or key_defaults(self.config)
        self._model_config: tuple[BreakerConfig, BreakerConfig] | None = None  # (config, its model scopes' copy)
        self.postmortem_text = postmortem_text
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
        self.account: AccountWindows | None = None
        if windows is not None:
            configs = [self.config, self.per_agent, self.per_key, *self.agents.values()]
            self.account = AccountWindows(
                windows,
                history_hours=max(c.history_hours for c in configs),
                error_window_s=max(c.error_window_s for c in configs),
                refresh_s=refresh_s,
                clock=clock,
            )
        self._holder = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"  # this registry's name on a probe lease
        self._probing: set[str] = set()  # scopes whose shared probe lease this registry holds
        self._levels: dict[str, tuple[int, str]] = {}  # scope → (hour, level) last announced
        self.watchers: list[Callable[[BreakerRecord], None]] = []  # called with each newer note record
        self._notes: dict[str, float] = {}

    def config_for(self, scope: str) -> BreakerConfig:
        if scope == GLOBAL:
            return self.config
        if scope.startswith(MODEL_PREFIX):  # a model's breaker watches its error rate; spend is the others'
            made = self._model_config
            if made is None or made[0] is not self.config:  # made once per config (asked for on every call)
                made = self._model_config = (self.config, replace(self.config, spend_rate_k=None))
            return made[1]
        if scope.startswith(KEY_PREFIX):
            return self.per_key
        return self.agents.get(scope.removeprefix("agent:"), self.per_agent)

    @staticmethod
    def scope_of(agent: str | None) -> str:
        return f"agent:{agent}" if agent else GLOBAL

    @staticmethod
    def model_scope(provider: str, model: str) -> str:
        return f"{MODEL_PREFIX}{provider}/{model}"

    @staticmethod
    def key_scope(key: str) -> str:
        return f"{KEY_PREFIX}{key}"

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
        self,
        agent: str | None,
        *,
        provider: str | None = None,
        model: str | None = None,
        key: str | None = None,
    ) -> CircuitBreaker | None:
        """The breaker that refuses a call for `agent` (with `key`, to `provider`/`model`) now, or None when it
        may go out."""
        return self.check_passing(agent, provider=provider, model=model, key=key)[0]

    def check_passing(
        self,
        agent: str | None,
        *,
        provider: str | None = None,
        model: str | None = None,
        key: str | None = None,
        passable: Callable[[str], bool] | None = None,
    ) -> tuple[CircuitBreaker | None, tuple[str, ...]]:
        """`check`, for a call an override lets past the breakers whose scope `passable` accepts: (the breaker
        that still refuses it, or None; the scopes of the open breakers it passes). A passed breaker is left as it
        is for every other call: it stays open, and a half-open one's probe is not taken unless one is free."""
        if self.state is not None and self._clock() >= self._next_sync:
            self.sync()
        breakers = self._breakers
        scopes = self._scopes(agent)
        if key:
            scopes = (*scopes, self.key_scope(key))
        if provider and model:
            scopes = (*scopes, self.model_scope(provider, model))
        passed: tuple[str, ...] = ()
        with self._lock:
            for scope in scopes:
                breaker = breakers.get(scope)
                # A closed breaker allows without more ado (`allow` handles open and half-open).
                if breaker is None or breaker._state is BreakerState.CLOSED:
                    continue
                if passable is not None and passable(scope):
                    if breaker.state is BreakerState.OPEN or not self._allow(breaker):
                        passed += (scope,)
                elif not self._allow(breaker):
                    return breaker, passed
        return None, passed

    def record(
        self,
        agent: str | None,
        *,
        cost: Decimal = Decimal(0),
        ok: bool = True,
        state: dict[str, Any] | None = None,
        provider: str | None = None,
        model: str | None = None,
        key: str | None = None,
        failed: bool | None = None,
        passed: frozenset[str] = frozenset(),
    ) -> list[BreakerTripped]:
        """A call finished; returns the trips it caused. `ok=False`: the provider failed it (5xx, 529, timeout,
        connection error), counted by the provider/model's breaker only (given `provider` and `model`).
        `key` and `failed` (the call failed, for whatever reason; default: `not ok`) feed the key's breaker.
        `passed`: the scopes whose open breaker an override let this call past; its spend and outcome count in
        their windows, but it was no half-open probe, so it neither closes nor reopens them."""
        trips: list[Trip] = []
        changed: list[BreakerRecord] = []
        sharing = self.state is not None
        now = self._clock()
        scopes = [(scope, True) for scope in self._scopes(agent)]
        if key:
            scopes.append((self.key_scope(key), not (failed if failed is not None else not ok)))
        if provider and model:
            scopes.append((self.model_scope(provider, model), ok))
        account = self.account
        if account is not None:
            self._feed(account, scopes, cost)
            if account.due(now) or not all(account.known(scope) for scope, _ in scopes):
                self._exchange([scope for scope, _ in scopes])
        figures: dict[str, Figures] = {}
        with self._lock:
            for scope, outcome in scopes:
                breaker = self._breakers.get(scope) or self._breaker(scope)
                since = breaker.since
                if passed and scope in passed and breaker.state is BreakerState.HALF_OPEN:
                    continue
                if account is None:
                    trip = breaker.record(cost=cost, ok=outcome, now=now)
                elif breaker.state is BreakerState.HALF_OPEN:
                    trip = breaker.probe_done(outcome, now)
                else:
                    found = figures[scope] = account.figures(scope, breaker.config, now)
                    trip = breaker.judge(
                        hour_spend=found.hour_spend,
                        baseline=found.baseline,
                        calls=found.calls,
                        failures=found.failures,
                        now=now,
                    )
                if sharing and breaker.since != since:
                    changed.append(breaker.to_record())
                if trip is not None:
                    trips.append(trip)
        if trips and account is not None and sharing:
            trips = self._first_trips(trips, changed)
        for record in changed:  # outside the lock: a store write may take a round trip
            self._share(record)
            if record.scope in self._probing:
                self._release_probe(record.scope)
        if figures:
            self._announce_levels(figures, now)
        return [self._announce(trip, state, figures.get(trip.scope)) for trip in trips] if trips else []

    def reset(self, scope: str) -> BreakerRecord:
        """An operator closes the breaker of `scope` everywhere: the closed record is shared and the scope's
        account-wide figures start again (the burst that tripped it is accounted for; the trip stays in its
        post-mortem). Raises `KeyError` for a scope no process has seen."""
        if self.state is not None:
            self.sync()
        with self._lock:
            breaker = self._breakers.get(scope)
            if breaker is None:
                raise KeyError(scope)
            breaker.reset(max(self._clock(), breaker.since + 1e-6))
            record = breaker.to_record()
        if self.account is not None:
            self.account.forget(scope)
            try:
                self.account.windows.clear(scope)
            except FiscusError as exc:
                self._store_failed(exc)
        if self.state is not None:
            self._share(record)
        log.warning("fiscus: breaker %s reset by an operator", scope)
        return record

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
        if self.account is not None and self.account.due(self._clock()):
            self._exchange([])
            self.announce_levels()
        if self.state is None:
            return
        self._next_sync = self._clock() + self.refresh_s  # first, so concurrent callers do not all read
        try:
            records = self.state.load_all()
        except FiscusError as exc:
            self._store_failed(exc)
            return
        self._state_failing = False
        notes = [r for r in records if r.scope.startswith(NOTE_PREFIX) and r.since > self._notes.get(r.scope, 0.0)]
        for note in notes:  # not a breaker: a note for the process (the published policy version)
            self._notes[note.scope] = note.since
            for watcher in self.watchers:
                try:
                    watcher(note)
                except Exception:  # a watcher's failure must not stop breaker sharing
                    log.exception("fiscus: breaker state watcher failed")
        with self._lock:
            for record in records:
                if record.scope.startswith(NOTE_PREFIX):
                    continue
                found = self._breakers.get(record.scope)
                if found is None:
                    found = self._breakers[record.scope] = CircuitBreaker(
                        record.scope, self.config_for(record.scope), self._clock
                    )
                if found.adopt(record) and record.state == BreakerState.CLOSED and self.account is not None:
                    self.account.stale(record.scope)

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
        if self.account is not None:
            self._exchange([])  # what this process added since its last exchange still counts
            self.account.windows.close()
        if self.state is not None:
            self.state.close()

    def _announce(self, trip: Trip, state: dict[str, Any] | None, figures: Figures | None = None) -> BreakerTripped:
        path = self._write_postmortem(trip, state, figures)
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

    def _write_postmortem(self, trip: Trip, state: dict[str, Any] | None, figures: Figures | None) -> Path | None:
        """The trip preserved for a post-mortem: why, the account-wide figures, the caller's session state
        (fingerprints, not text, unless `postmortem_text`)."""
        if self.postmortem_dir is None:
            return None
        try:
            return write_postmortem(
                self.postmortem_dir,
                scope=trip.scope,
                reason=trip.reason,
                message=trip.message,
                opened_at=trip.opened_at,
                details=trip.details,
                session=state,
                account=figures.to_dict() if figures is not None else None,
                include_text=self.postmortem_text,
            )
        except OSError as exc:  # a full disk must not turn a trip into a failed call
            log.warning("fiscus: post-mortem not written: %s", exc)
            return None

    def snapshot(self) -> list[dict[str, Any]]:
        """Every breaker's state, for `fiscus budgets status` and /metrics."""
        if self.state is not None and self._clock() >= self._next_sync:
            self.sync()
        with self._lock:
            breakers = list(self._breakers.values())
        return [b.snapshot() for b in breakers]
