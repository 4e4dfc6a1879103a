"""The signals read from budget status: daily budget burn and quota utilisation."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from fiscus.alerts.levels import level_at_least, percent
from fiscus.events.alert_events import AlertRaised
from fiscus.policy.alerts import DailyBudgetBurn, QuotaUtilisation
from fiscus.policy.types import Policy

_DAY = timedelta(days=1)


def budget_signals(
    statuses: Iterable[Any],
    policy: Policy,
    daily: DailyBudgetBurn | None,
    quota: QuotaUtilisation | None,
    now: datetime,
) -> list[AlertRaised]:
    """A daily budget's burn, and every other period budget's utilisation of its quota (sessions apart: their
    ceilings are the guards' business)."""
    out: list[AlertRaised] = []
    for row in statuses:
        is_daily = row.window == "day"
        if row.window == "session" or (daily is None and is_daily) or (quota is None and not is_daily):
            continue
        settings = daily if is_daily else quota
        assert settings is not None
        hit = level_at_least(settings, row.utilisation)
        if hit is None:
            continue
        values = tuple((str(k), str(v)) for k, v in row.values)
        subject = (("budget", row.budget), *values)
        signal = "daily_budget_burn" if is_daily else "quota_utilisation"
        what = "daily budget" if is_daily else f"{row.window} budget"
        reset = f"; it resets {row.resets_at:%Y-%m-%d %H:%M} UTC" if row.resets_at else ""
        message = f"The {what} {row.budget}{_of(values)} is {percent(row.utilisation)} used{reset}"
        expires = (row.resets_at + _DAY).timestamp() if row.resets_at else (now + 30 * _DAY).timestamp()
        out.append(
            AlertRaised(
                signal=signal,
                level=hit[0],
                subject=subject,
                value=row.utilisation,
                limit=hit[1],
                message=f"{message} ({hit[0]})",
                window=row.window_id,
                expires_at=expires,
                owner=policy.owner_of({**_scope(policy, row.budget), **dict(values)}),
                detail={"utilisation": format(row.utilisation, "f"), "meter": str(row.meter)},
                timestamp=now,
            )
        )
    return out


def _of(values: tuple[tuple[str, str], ...]) -> str:
    return " (" + " ".join(f"{k}={v}" for k, v in values) + ")" if values else ""


def _scope(policy: Policy, name: str) -> dict[str, str]:
    """The single-valued scope of a budget (team=growth…), to find its owner."""
    try:
        budget = policy.budget(name)
    except KeyError:
        return {}
    return {dim: value for dim, value in budget.scope if isinstance(value, str) and value != "*"}
