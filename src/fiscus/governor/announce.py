"""Announce each threshold once per window per budget instance, across processes.

A fired threshold is a counter in the budget store (`f:<instance>|<window>|<threshold>`) with a requests
limit of 1: the first caller to reserve and settle it announces; everyone else is refused. A small local set
spares the store round trip once this process has seen the key fired. The call that announced carries the key
in its cost event (tag `announced`), so a store rebuilt from the ledger gets its marks back
(`fiscus.stores.rebuild_marks`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from fiscus.engine.decide import utilisation_of
from fiscus.engine.decision import Action, ThresholdHit
from fiscus.engine.ports import Amounts, Limits, Reservation, ReserveLine
from fiscus.events.budget_events import BudgetExhausted, BudgetThresholdCrossed, Standing
from fiscus.governor.drive import drive
from fiscus.governor.steps import Reserve, Settle, Steps
from fiscus.money import from_nanos
from fiscus.stores.base import BudgetStore

_ONE = Amounts(requests=1)
_ONCE = Limits(requests=1)
_LOCAL_MAX = 50_000


def fired_key(hit: ThresholdHit) -> str:
    return f"f:{hit.instance}|{hit.window_id}|{hit.tag}"


def standing(
    scope: tuple[tuple[str, str], ...],
    used: Amounts | None,
    limits: Limits | None,
    caller: tuple[tuple[str, str], ...] = (),
) -> Standing:
    """An instance's scope and use against its limits, as an announcement states them."""
    who = dict(caller)
    if used is None or limits is None:
        return Standing(scope=scope, agent=who.get("agent"), team=who.get("team"))
    _, meter = utilisation_of(used, limits)
    on_meter = {"tokens": (used.tokens, limits.tokens), "requests": (used.requests, limits.requests)}
    meter_used, meter_limit = on_meter.get(meter, (None, None))
    return Standing(
        scope=scope,
        spent_usd=from_nanos(used.nanos),
        limit_usd=from_nanos(limits.nanos) if limits.nanos is not None else None,
        meter=meter,
        used=meter_used,
        limit=meter_limit,
        agent=who.get("agent"),
        team=who.get("team"),
    )


def event_for(hit: ThresholdHit, now: float) -> BudgetThresholdCrossed | BudgetExhausted:
    timestamp = datetime.fromtimestamp(now, UTC)
    where = standing(hit.scope, hit.used, hit.limits, hit.caller)
    if hit.tag == "exhausted":
        return BudgetExhausted(
            budget=hit.budget,
            instance=hit.instance,
            window=hit.window_id,
            action=str(hit.action),
            utilisation=hit.utilisation,
            resets_at=hit.resets_at,
            standing=where,
            timestamp=timestamp,
        )
    return BudgetThresholdCrossed(
        budget=hit.budget,
        instance=hit.instance,
        window=hit.window_id,
        threshold=hit.at or hit.utilisation,
        action=str(hit.action),
        utilisation=hit.utilisation,
        channel=hit.channel,
        resets_at=hit.resets_at,
        standing=where,
        timestamp=timestamp,
    )


class Announcer:
    def __init__(self, store: BudgetStore, emit: Callable[[object], None] | None) -> None:
        self._store = store
        self._emit = emit
        self._seen: set[str] = set()

    def pending(self, hits: tuple[ThresholdHit, ...]) -> list[tuple[str, ThresholdHit]]:
        return [
            (key, hit) for hit in hits if hit.action is not Action.ALLOW and (key := fired_key(hit)) not in self._seen
        ]

    def announce_steps(self, hits: tuple[ThresholdHit, ...], *, event_id: str, now: float) -> Steps[tuple[str, ...]]:
        """Announce each hit not yet announced in its window; the fired keys this call claimed (its cost event
        records them, so a store rebuilt from the ledger gets the marks back and announces nothing twice)."""
        won: list[str] = []
        for n, (key, hit) in enumerate(self.pending(hits)):
            if (yield from self.once_steps(key, expires_at=hit.expires_at, reservation_id=f"{event_id}:a{n}", now=now)):
                self._announce(hit, now)
                won.append(key)
        return tuple(won)

    def once(self, key: str, *, expires_at: float | None, reservation_id: str, now: float) -> bool:
        """Claim `key` (until `expires_at`) across every process on the store: True for the first caller only."""
        return drive(self.once_steps(key, expires_at=expires_at, reservation_id=reservation_id, now=now), self._store)

    def once_steps(self, key: str, *, expires_at: float | None, reservation_id: str, now: float) -> Steps[bool]:
        if key in self._seen:
            return False
        result = yield Reserve(reservation_id, _claim(key, expires_at), now, 60.0)
        if isinstance(result, Reservation):
            yield Settle(result, _ONE, now)
        return self._remember(key, isinstance(result, Reservation))

    def _remember(self, key: str, won: bool) -> bool:
        if len(self._seen) > _LOCAL_MAX:
            self._seen.clear()
        self._seen.add(key)
        return won

    def _announce(self, hit: ThresholdHit, now: float) -> None:
        if self._emit is not None:
            self._emit(event_for(hit, now))


def _claim(key: str, expires_at: float | None) -> tuple[ReserveLine, ...]:
    """A counter that admits one request: whoever reserves it first has claimed `key`."""
    return (ReserveLine(budget="announce", keys=(key,), limits=_ONCE, amount=_ONE, expires_at=expires_at),)
