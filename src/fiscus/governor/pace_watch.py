"""`PaceWatch`: tell people while there is still time. Each check reads every budget's status and announces,
once per window and budget instance across every process on the store, each calendar budget whose pace so far
passes its limit before the reset (`BudgetOffPace`, to the governor's listeners: notify channels, metrics) —
only while it still has room: an exhausted budget has its own announcement, and a pace warning after it is noise.
The gateway runs a check every `gateway.pace_check_s` seconds, off the request path."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fiscus.engine.decide import EFFECTS
from fiscus.engine.plan import instance_scope, instance_stem
from fiscus.events.budget_events import BudgetOffPace
from fiscus.events.cost_event import new_event_id
from fiscus.governor.announce import standing

if TYPE_CHECKING:
    from fiscus.governor.governor import Governor

_DAY = 86_400.0


class PaceWatch:
    def __init__(self, governor: Governor) -> None:
        self.governor = governor
        self._budgets = {budget.name: budget for budget in governor.policy.budgets}

    def check(self) -> list[BudgetOffPace]:
        """Announce the budgets newly off pace in their current window; returns what was announced."""
        governor = self.governor
        now = governor.now()
        announced = []
        candidates = []
        for row in governor.status():
            pace = row.pace
            if pace is None or not pace.over or row.utilisation >= 1 or EFFECTS[row.action].refuses:
                continue
            budget = self._budgets[row.budget]
            stem = instance_stem(budget, row.values)
            candidates.append((row, pace, budget, stem, f"f:{stem}|{row.window_id}|"))
        # A budget that has refused a call this window (its exhaustion was announced) has no room left to save.
        marks = tuple(prefix + "exhausted" for *_, prefix in candidates)
        fired = governor.store.counters(marks, now=now) if marks else {}
        for row, pace, budget, stem, prefix in candidates:
            if fired[prefix + "exhausted"].used.requests:
                continue
            expires = row.resets_at.timestamp() + _DAY if row.resets_at else None
            if not governor.announcer.once(prefix + "pace", expires_at=expires, reservation_id=new_event_id(), now=now):
                continue
            event = BudgetOffPace(
                budget=row.budget,
                instance=stem,
                window=row.window_id,
                utilisation=row.utilisation,
                projected=pace.projected,
                exhausts_at=pace.exhausts_at,
                resets_at=row.resets_at,
                standing=standing(instance_scope(budget, row.values), row.spent + row.reserved, row.limits),
            )
            governor.on_event(event)
            announced.append(event)
        return announced
