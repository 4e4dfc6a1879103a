"""What a `BreakerRegistry` does with account-wide windows (`fiscus.guards.account`): feed them, exchange them,
hold the fleet's one half-open probe, keep the first trip of a burst, announce the spend-rate levels once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from fiscus.errors import FiscusError
from fiscus.events.guard_events import SpendRateLevel
from fiscus.guards.account import AccountWindows, Figures
from fiscus.guards.breaker import BreakerConfig, BreakerState, CircuitBreaker, Trip
from fiscus.guards.record import BreakerRecord
from fiscus.money import to_nanos

log = logging.getLogger("fiscus.guards")

# The seeds' alert table for the hourly spend rate: warning at 2 ×, critical at 5 × the baseline.
LEVELS = (("critical", Decimal(5)), ("warning", Decimal(2)))
LEVEL_NOTE = "~level:"  # `~level:<level>:<scope>` in the breaker state: since when the scope's level stands


def level_of(ratio: Decimal | None) -> str | None:
    """The alert table's level a spend rate (a multiple of the median hour) reaches, or None."""
    if ratio is None:
        return None
    return next((name for name, at in LEVELS if ratio >= at), None)


def level_note(level: str, scope: str) -> str:
    return f"{LEVEL_NOTE}{level}:{scope}"


PROBE_LEASE_S = 60.0  # a probe's lease outlives any call; a worker that dies holding it frees it by then


class AccountSharing:
    """Mixed into `BreakerRegistry`, whose state these methods read."""

    account: AccountWindows | None
    state: Any
    on_event: Callable[[object], None] | None
    _breakers: dict[str, CircuitBreaker]
    _clock: Callable[[], float]
    _holder: str
    _probing: set[str]
    _levels: dict[str, tuple[int, str]]
    _lock: Any

    def config_for(self, scope: str) -> BreakerConfig:
        raise NotImplementedError

    def _store_failed(self, exc: FiscusError) -> None:
        raise NotImplementedError

    def _allow(self, breaker: CircuitBreaker) -> bool:  # under the lock
        """Open refuses; half-open lets a probe out, and with shared windows only the holder of the scope's
        lease does, so one probe is out at a time across every process."""
        if not breaker.allow():
            return False
        if self.account is None or breaker._state is not BreakerState.HALF_OPEN:
            return True
        scope = breaker.scope
        try:
            claimed = self.account.windows.claim_probe(scope, self._holder, now=self._clock(), lease_s=PROBE_LEASE_S)
        except FiscusError as exc:
            self._store_failed(exc)
            claimed = True  # the store is out: each process probes on its own, as without windows
        if not claimed:
            breaker._probes_out = max(breaker._probes_out - 1, 0)
            return False
        self._probing.add(scope)
        return True

    def _first_trips(self, trips: list[Trip], changed: list[BreakerRecord]) -> list[Trip]:
        """Several processes may see the same account-wide figures cross the line within one refresh: the first
        trip recorded in the shared state stands, and a later one takes it instead of announcing its own."""
        assert self.state is not None
        try:
            held = {r.scope: r for r in self.state.load_all()}
        except FiscusError as exc:
            self._store_failed(exc)
            return trips
        kept = []
        for trip in trips:
            first = held.get(trip.scope)
            if first is None or first.state != "open" or first.since >= trip.opened_at:
                kept.append(trip)
                continue
            if first.reopens_at is not None and first.reopens_at <= trip.opened_at:
                kept.append(trip)  # that trip's cooldown is over: this one is a new trip
                continue
            with self._lock:
                self._breakers[trip.scope].adopt(first, force=True)
            changed[:] = [r for r in changed if r.scope != trip.scope]
        return kept

    def _feed(self, account: AccountWindows, scopes: list[tuple[str, bool]], cost: Decimal) -> None:
        nanos = to_nanos(cost) if cost > 0 else 0
        for scope, outcome in scopes:
            config = self.config_for(scope)
            spend = nanos if config.spend_rate_k is not None else 0
            counted = config.error_rate is not None
            if spend or counted:
                account.add(scope, spend_nanos=spend, calls=int(counted), failures=int(counted and not outcome))

    def _exchange(self, scopes: list[str]) -> None:
        assert self.account is not None
        try:
            self.account.exchange(scopes)
        except FiscusError as exc:
            self._store_failed(exc)

    def _release_probe(self, scope: str) -> None:
        assert self.account is not None
        self._probing.discard(scope)
        try:
            self.account.windows.release_probe(scope, self._holder)
        except FiscusError as exc:
            self._store_failed(exc)

    def _announce_levels(self, figures: dict[str, Figures], now: float) -> None:
        """The alert table's levels of the account-wide spend rate, once per scope and hour and level across the
        fleet."""
        hour = int(now // 3600)
        for scope, found in figures.items():
            ratio = found.ratio()
            if ratio is None:
                continue
            level = level_of(ratio)
            if level is None or self._levels.get(scope) in ((hour, level), (hour, "critical")):
                continue
            self._levels[scope] = (hour, level)
            if not self._first_to_tell(f"~level:{scope}:{hour}:{level}", now):
                continue
            assert found.baseline is not None
            self._note_level(scope, level, hour, found, now)
            event = SpendRateLevel(scope, level, found.hour_spend, found.baseline, ratio.quantize(Decimal("0.01")))
            log.warning("fiscus: %s", event.message)
            if self.on_event is not None:
                self.on_event(event)

    def _note_level(self, scope: str, level: str, hour: int, found: Figures, now: float) -> None:
        """Since when the level stands, for every process's alert table (`fiscus.alerts.breaker_signals`): the
        first process to see it in this hour writes it once."""
        if self.state is None:
            return
        details = {"hour": hour, **found.to_dict()}
        note = BreakerRecord(scope=level_note(level, scope), state="open", since=now, details=details)
        try:
            self.state.save(note)
        except FiscusError as exc:
            self._store_failed(exc)

    def announce_levels(self) -> None:
        """Announce the levels the account-wide figures reach now, for every spend-rate breaker this process
        knows: run after an exchange with no call of its own (an idle worker's sync), so a level reached by the
        last calls of a burst spread over processes is noted even when no further call comes."""
        account = self.account
        if account is None:
            return
        now = self._clock()
        with self._lock:
            breakers = [b for b in self._breakers.values() if b.config.spend_rate_k is not None]
        figures = {b.scope: account.figures(b.scope, b.config, now) for b in breakers if account.known(b.scope)}
        if figures:
            self._announce_levels(figures, now)

    def _first_to_tell(self, claim: str, now: float) -> bool:
        """Whether this process is the first of the fleet to announce `claim` (a lease in the shared windows)."""
        if self.account is None:
            return True
        try:
            return self.account.windows.claim_probe(claim, self._holder, now=now, lease_s=3600)
        except FiscusError as exc:
            self._store_failed(exc)
            return True
