"""Admin routes for the Finance review: the alert table as it stands now, and the Finance summary the
dashboard's first screen shows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException

from fiscus.errors import FiscusError


def review_router(
    *,
    governor: Any,
    alerts: Any | None,
    ledger_url: str,
    open_ledger: Callable[[str], Any],
    forecast_file: Path | None = None,
) -> APIRouter:
    router = APIRouter()

    @router.get("/alerts")
    def standing_alerts() -> list[dict[str, Any]]:
        """The alerts of the alert table standing now (warning or critical), critical first, each with its owner;
        evaluated on request (announcements go out once per window from the gateway's own check)."""
        if alerts is None:
            return []
        try:
            return [alert.to_dict() for alert in alerts.evaluate()]
        except FiscusError as exc:
            raise HTTPException(503, str(exc)) from None

    @router.get("/finance")
    def finance() -> dict[str, Any]:
        """Spend today, this week and month to date; the month against its forecast and budgets; budgets with
        their pace; anomalies with owners; cost per outcome per case; cache hit rates; the saving by lever."""
        from fiscus.reports.finance import finance_summary, forecast_month

        policy = getattr(governor, "policy", None)
        if policy is None:
            raise HTTPException(503, "this gateway keeps no budgets")
        try:
            statuses = list(governor.status())
            standing = alerts.evaluate() if alerts is not None else []
            with open_ledger(ledger_url) as ledger:
                return finance_summary(
                    ledger,
                    policy,
                    statuses=statuses,
                    alerts=standing,
                    now=datetime.now(UTC),
                    forecast=forecast_month(forecast_file),
                )
        except FiscusError as exc:
            raise HTTPException(503, str(exc)) from None

    return router
