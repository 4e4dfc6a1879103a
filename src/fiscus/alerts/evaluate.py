"""Every signal of the alert table at one moment: what is at warning or critical now (nothing claimed or sent;
`AlertWatch` does that once per window)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from fiscus.alerts.budget_signals import budget_signals
from fiscus.alerts.ledger_signals import signals
from fiscus.events.alert_events import AlertRaised, Level
from fiscus.ledger.base import Ledger
from fiscus.policy.types import Policy

LEDGER_SIGNALS = ("hourly_spend", "cache_miss", "session_cost", "context_growth")


def evaluate_alerts(
    ledger: Ledger,
    statuses: Iterable[Any],
    policy: Policy,
    now: datetime,
    *,
    guards: Iterable[AlertRaised] = (),
) -> list[AlertRaised]:
    """The alerts standing at `now`, critical first, each with its owner and its level's channel. `guards`: the
    entries read from the breakers (`fiscus.alerts.breaker_signals`), one more source of the same table."""
    settings = policy.alerts
    if not settings.enabled:
        return []
    enabled = [(name, settings.signal(name)) for name in LEDGER_SIGNALS if settings.on(name)]
    found = signals(ledger, enabled, now, policy.owner_of)
    found += guards
    found += budget_signals(
        statuses,
        policy,
        settings.daily_budget_burn if settings.on("daily_budget_burn") else None,
        settings.quota_utilisation if settings.on("quota_utilisation") else None,
        now,
    )
    channels = {Level.WARNING: settings.warning_channel, Level.CRITICAL: settings.critical_channel}
    found = [replace(a, channel=channels[a.level]) if channels[a.level] else a for a in found]
    return sorted(found, key=lambda a: (a.level is not Level.CRITICAL, a.signal, a.subject_label))
