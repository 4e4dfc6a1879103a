"""`PaceWatch`: tell people while there is still time. Each check reads every budget's status and announces,
once per window and budget instance across every process on the store, each calendar budget whose pace so far
passes its limit before the reset (`BudgetOffPace`, to the governor's listeners: notify channels, metrics).
The gateway runs a check every `gateway.pace_check_s` seconds, off the request path."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fiscus.engine.plan import instance_stem
from fiscus.events.budget_events import BudgetOffPace
from fiscus.events.cost_event import new_event_id

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
        for row in governor.status():
            pace = row.pace
            if pace is None or not pace.over:
                continue
            stem = instance_stem(self._budgets[row.budget], row.values)
            expires = row.resets_at.timestamp() + _DAY if row.resets_at else None
            key = f"f:{stem}|{row.window_id}|pace"
            if not governor.announcer.once(key, expires_at=expires, reservation_id=new_event_id(), now=now):
                continue
            event = BudgetOffPace(
                budget=row.budget,
                instance=stem,
                window=row.window_id,
                utilisation=row.utilisation,
                projected=pace.projected,
                exhausts_at=pace.exhausts_at,
                resets_at=row.resets_at,
            )
            governor.on_event(event)
            announced.append(event)
        return announced
