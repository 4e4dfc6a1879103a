"""Admin routes for the weekly review: the alert table as it stands now."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from fiscus.errors import FiscusError


def review_router(*, alerts: Any | None) -> APIRouter:
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

    return router
