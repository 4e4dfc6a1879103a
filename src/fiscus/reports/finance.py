"""The Finance view of the dashboard: spend so far, month to date against the forecast, budgets with their pace,
anomalies with owners, cost per outcome, cache hit rates and the saving by lever — in words a finance reader
uses. Every figure comes from the ledger's spend query or the budget status, so rollups serve it too."""

from __future__ import annotations

import calendar
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from fiscus.ledger.base import Ledger, SpendQuery, SpendRow, regroup
from fiscus.policy.types import Policy
from fiscus.reports.cases import case_costs
from fiscus.reports.savings import LEVER_NAMES, degraded_spend
from fiscus.reports.spend import dec

# The engine's words for a budget's state and a breaker's, as a finance reader says them.
BUDGET_STATES = {
    "allow": "on track",
    "notify": "on track (owner told)",
    "warn": "nearing its limit",
    "downgrade": "using a cheaper model to stay within budget",
    "compress": "sending shorter context to stay within budget",
    "throttle": "slowed down to stay within budget",
    "partial": "limit reached: answers cut short",
    "block": "limit reached: calls stopped",
}
BREAKER_STATES = {
    "closed": "normal",
    "open": "stopped: spending too fast",
    "half_open": "trying again carefully after a stop",
}
_DUE = timedelta(hours=48)
_RATE = Decimal("0.0001")


def month_start(now: datetime) -> datetime:
    return datetime(now.year, now.month, 1, tzinfo=UTC)


def forecast_month(path: Path | None) -> dict[str, str] | None:
    """The month's P50 / P95 from `fiscus model --json` (month_usd) or `fiscus forecast --json` (the sum of its
    projections); None when no file says."""
    if path is None or not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and isinstance(data.get("month_usd"), dict):
        return {"p50_usd": str(data["month_usd"]["p50"]), "p95_usd": str(data["month_usd"]["p95"]), "source": "model"}
    groups = [g.get("projection") for g in data.get("groups", [])] if isinstance(data, dict) else []
    projections = [p for p in groups if isinstance(p, dict)]
    if not projections:
        return None
    p50 = sum((Decimal(str(p["p50_usd"])) for p in projections), Decimal(0))
    p95 = sum((Decimal(str(p["p95_usd"])) for p in projections), Decimal(0))
    return {"p50_usd": dec(p50), "p95_usd": dec(p95), "source": "forecast"}


def finance_summary(
    ledger: Ledger,
    policy: Policy,
    *,
    statuses: Iterable[Any],
    alerts: Iterable[Any],
    now: datetime,
    forecast: dict[str, str] | None = None,
) -> dict[str, Any]:
    start = month_start(now)
    days = calendar.monthrange(now.year, now.month)[1]
    elapsed = (now - start) / timedelta(days=days)

    def total(rows: list[SpendRow]) -> SpendRow | None:
        return rows[0] if rows else None

    # The month to date by day and workflow gives its total, today's and the workflows' (`regroup`).
    daily = ledger.spend(SpendQuery(by=("day", "workflow"), since=start, until=now))
    today_starts = datetime(now.year, now.month, now.day, tzinfo=UTC).strftime("%Y-%m-%d")  # days are UTC
    today = total(regroup((r for r in daily if str(r.group["day"]) >= today_starts), ()))
    week = total(ledger.spend(SpendQuery(since=now - timedelta(days=7), until=now)))
    month = total(regroup(daily, ()))
    mtd = month.total_usd if month else Decimal(0)
    monthly_limits = [s for s in statuses if s.window == "month" and s.limits.nanos is not None and not s.values]
    envelope = sum((Decimal(s.limits.nanos) / Decimal(10**9) for s in monthly_limits), Decimal(0))
    on_pace = (mtd / Decimal(str(elapsed))) if elapsed > 0 else Decimal(0)
    by_workflow = regroup(daily, ("workflow",))
    budgets = []
    for s in statuses:
        pace = getattr(s, "pace", None)
        budgets.append(
            {
                "budget": s.budget,
                "for": s.scope,
                "values": dict(s.values),
                "period": s.window,
                "spent_usd": dec(Decimal(s.spent.nanos) / Decimal(10**9)),
                "limit_usd": dec(Decimal(s.limits.nanos) / Decimal(10**9)) if s.limits.nanos is not None else None,
                "limit": {"tokens": s.limits.tokens, "requests": s.limits.requests},
                "used": dec(s.utilisation.quantize(_RATE)),
                "state": BUDGET_STATES.get(str(s.action), str(s.action)),
                "on_pace_for": dec(pace.projected.quantize(_RATE)) if pace is not None else None,
                "runs_out_at": pace.exhausts_at.isoformat() if pace is not None and pace.exhausts_at else None,
                "resets_at": s.resets_at.isoformat() if s.resets_at else None,
            }
        )
    anomalies = [
        {**a.to_dict(), "owner": a.owner or "unassigned", "due": (a.timestamp + _DUE).isoformat()} for a in alerts
    ]
    saved = month.saved.by_lever() if month else {}
    degraded = degraded_spend(ledger, SpendQuery(since=start, until=now)) if month else []
    return {
        "as_of": now.isoformat(),
        "spend": {
            "today_usd": dec(today.total_usd if today else Decimal(0)),
            "last_7_days_usd": dec(week.total_usd if week else Decimal(0)),
            "month_to_date_usd": dec(mtd),
            "calls_month_to_date": month.requests if month else 0,
        },
        "month": {
            "month_to_date_usd": dec(mtd),
            "on_pace_for_usd": dec(on_pace.quantize(Decimal("0.000001"))),
            "share_of_month_gone": dec(Decimal(str(elapsed)).quantize(_RATE)),
            "forecast": forecast,
            "budgeted_usd": dec(envelope) if monthly_limits else None,
        },
        "budgets": budgets,
        "anomalies": anomalies,
        "cost_per_outcome": [g.to_dict() for g in case_costs(ledger, by=("workflow",), since=start, until=now)],
        "cache": {
            "target": dec(policy.cache_hit_target),
            "workflows": [
                {
                    "workflow": r.group.get("workflow"),
                    "hit_rate": dec(r.cache_hit_rate.quantize(_RATE)),
                    "meets_target": r.cache_hit_rate >= policy.cache_hit_target,
                }
                for r in by_workflow
            ],
        },
        "saving": {
            "without_fiscus_usd": dec(month.ungoverned_usd) if month else "0",
            "saved_usd": dec(month.saved.total) if month else "0",
            "by_lever": [{"lever": LEVER_NAMES.get(k, k), "saved_usd": dec(v)} for k, v in saved.items() if v],
            # Not a saving, counted apart: calls refused or cut short, and calls a budget degraded (with their cost).
            "refused_calls": month.refused if month else 0,
            "degraded_calls": degraded[0].requests if degraded else 0,
            "degraded_usd": dec(degraded[0].total_usd) if degraded else "0",
        },
    }
