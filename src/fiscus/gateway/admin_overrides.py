"""Admin routes for overrides: grant (for a key or a budget, with an expiry and a reason), list, revoke. Each grant
and revocation is announced to the governor's listeners (the notify channels)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from fiscus.errors import FiscusError
from fiscus.events.override_events import OverrideGranted, OverrideRevoked
from fiscus.governor import Governor
from fiscus.keys import KeyRing
from fiscus.overrides import OverrideBook, OverrideNotFoundError
from fiscus.overrides.targets import check_budget, check_key, parse_end


class NewOverride(BaseModel):
    key_id: str | None = None
    budget: str | None = None
    reason: str
    lasting: str | None = Field(default=None, alias="for", description="a duration: 30m, 1h, 2d")
    until: str | None = Field(default=None, description="an ISO time, e.g. 2026-12-05T18:00Z")
    granted_by: str | None = None


def overrides_router(*, governor: Governor, keyring: KeyRing, overrides: OverrideBook | None) -> APIRouter:
    router = APIRouter()

    def book() -> OverrideBook:
        if overrides is None:
            raise HTTPException(404, "overrides are not kept by this gateway")
        return overrides

    @router.post("/overrides", status_code=201)
    def grant(body: NewOverride) -> dict[str, Any]:
        """Let a key's calls (or every call on a budget) past the refusals the policy marks overridable until the
        override expires; announced, and named on the ledger event of every call it lets through."""
        try:
            if body.key_id is not None:
                check_key(keyring.store, body.key_id)
            if body.budget is not None:
                check_budget(governor.policy, body.budget)
            lasting, until = parse_end(body.lasting, body.until)
            granted = book().grant(
                reason=body.reason,
                key_id=body.key_id,
                budget=body.budget,
                until=until,
                lasting=lasting,
                granted_by=body.granted_by,
            )
        except FiscusError as exc:
            raise HTTPException(400, str(exc)) from None
        governor.on_event(
            OverrideGranted(
                granted.id, granted.reason, granted.expires_at, granted.key_id, granted.budget, granted.granted_by
            )
        )
        return granted.to_dict()

    @router.get("/overrides")
    def list_overrides(every: bool = Query(False, alias="all", description="revoked and expired ones too")) -> Any:
        return [override.to_dict() for override in book().list(every=every)]

    @router.delete("/overrides/{override_id}")
    def revoke(override_id: str) -> dict[str, Any]:
        try:
            revoked = book().revoke(override_id)
        except OverrideNotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        governor.on_event(OverrideRevoked(revoked.id, revoked.key_id, revoked.budget))
        return revoked.to_dict()

    return router
