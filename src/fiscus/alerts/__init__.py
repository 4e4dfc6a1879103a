"""The seeds' alert table as live alerts: hourly spend, cache misses, session cost, daily budget burn, quota
utilisation and context growth, each at a warning and a critical level, once per window, to the notify
channels (`alerts:` in the policy; on by default)."""

from fiscus.alerts.evaluate import evaluate_alerts
from fiscus.alerts.watch import AlertWatch
from fiscus.policy.alerts import SIGNALS, AlertSettings

__all__ = ["SIGNALS", "AlertSettings", "AlertWatch", "evaluate_alerts"]
