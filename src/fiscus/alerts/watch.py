"""`AlertWatch`: evaluate the alert table and announce each alert once per window, across every process on the
budget store (the same once-only claim as budget thresholds), to the governor's listeners: the notify channels,
metrics. The gateway runs a check every `gateway.alert_check_s` seconds; `fiscus alerts check` runs one from cron.
Given the breakers (`breakers=`), the spend-rate levels standing in their shared state are entries too; the
breakers announce those themselves, so the watch shows them and leaves them unclaimed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fiscus.alerts.breaker_signals import SIGNAL as BREAKER_SIGNAL
from fiscus.alerts.breaker_signals import standing_breaker_levels
from fiscus.alerts.evaluate import evaluate_alerts
from fiscus.events.alert_events import AlertRaised, Level
from fiscus.events.cost_event import new_event_id


class AlertWatch:
    def __init__(
        self, governor: Any, *, ledger_url: str, open_ledger: Callable[[str], Any], breakers: Any | None = None
    ) -> None:
        self.governor = governor
        self.breakers = breakers
        self.ledger_url = ledger_url
        self._open_ledger = open_ledger
        self._lock = threading.Lock()
        self.standing: list[AlertRaised] = []  # what the last check found, sent or not
        self.checked_at: datetime | None = None

    def evaluate(self, now: datetime | None = None) -> list[AlertRaised]:
        """What stands now, without claiming or sending anything."""
        governor = self.governor
        moment = now or datetime.fromtimestamp(governor.now(), UTC)
        policy = governor.policy
        guards = standing_breaker_levels(self.breakers, policy, moment)
        with self._open_ledger(self.ledger_url) as ledger:
            return evaluate_alerts(ledger, governor.status(), policy, moment, guards=guards)

    def check(self, now: datetime | None = None) -> list[AlertRaised]:
        """Evaluate, then announce the alerts not yet announced in their window; returns those announced."""
        alerts = self.evaluate(now)
        with self._lock:
            self.standing, self.checked_at = alerts, datetime.now(UTC)
        return [alert for alert in alerts if alert.signal != BREAKER_SIGNAL and self._claim(alert)]

    def _claim(self, alert: AlertRaised) -> bool:
        """Claim the alert's level in its window, and a critical's warning with it (a warning after its
        critical is no news); True when this process announced it."""
        governor = self.governor
        now = governor.now()
        levels = (Level.CRITICAL, Level.WARNING) if alert.level is Level.CRITICAL else (Level.WARNING,)
        announced = False
        for level in levels:
            key = f"f:alert|{alert.key}|{level}"
            won = governor.announcer.once(key, expires_at=alert.expires_at, reservation_id=new_event_id(), now=now)
            if won and level is alert.level:
                governor.on_event(alert)
                announced = True
        return announced

    def counts(self) -> dict[tuple[str, str], int]:
        """Standing alerts per (signal, level), for `/metrics`."""
        with self._lock:
            standing = list(self.standing)
        out: dict[tuple[str, str], int] = {}
        for alert in standing:
            key = (alert.signal, str(alert.level))
            out[key] = out.get(key, 0) + 1
        return out
