"""The admin API, mounted at `/admin`: virtual keys, budget status and spend, breakers and policy reload
(OpenAPI at `/admin/openapi.json`), and the dashboard page that shows them (`/admin/dashboard`). Off the hot
path, so FastAPI and pydantic are welcome here. Every API route needs `Authorization: Bearer <token>` where the
token is the value of the env var named by `gateway.admin_token_env`; without it the API is closed. The OpenAPI
document needs the token too (it maps what an attacker could try); the dashboard page itself holds no data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from fiscus.errors import FiscusError
from fiscus.gateway.admin_breakers import breakers_router
from fiscus.gateway.admin_cases import cases_router
from fiscus.gateway.admin_overrides import overrides_router
from fiscus.gateway.admin_review import review_router
from fiscus.gateway.tokens import configured, matches
from fiscus.governor import Governor
from fiscus.governor.reload import PolicyReloader
from fiscus.guards.registry import BreakerRegistry
from fiscus.keys import KeyClaims, KeyNotFoundError, KeyRing, VirtualKey

_WINDOWS = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
    "month": timedelta(days=30),
}


class Claims(BaseModel):
    """What a key's requests may claim through `x-fiscus-*` headers: per dimension (agent, team, workflow,
    task_class, tenant, user) values or glob patterns; anything else is refused (403) or ignored."""

    allow: dict[str, list[str]] = Field(default_factory=dict)
    on_disallowed: Literal["refuse", "ignore"] = "refuse"

    def compiled(self) -> KeyClaims:
        try:
            return KeyClaims.of(self.allow, self.on_disallowed)
        except FiscusError as exc:
            raise HTTPException(400, str(exc)) from None


class NewKey(Claims):
    agent: str
    team: str
    environment: str
    workflow: str | None = None
    tenant: str | None = None
    user: str | None = None
    organization: str | None = None
    name: str | None = None


def _plain(value: Any) -> Any:
    """Dataclasses, decimals and datetimes as JSON-safe values (decimals as strings: money stays exact)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@lru_cache(maxsize=1)
def _dashboard_html() -> str:
    return resources.files("fiscus.gateway").joinpath("dashboard.html").read_text(encoding="utf-8")


def _key_view(key: VirtualKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "prefix": key.prefix,
        "name": key.name,
        "allow": key.claims.to_dict(),
        "on_disallowed": str(key.claims.on_disallowed),
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        "attribution": {k: v for k, v in key.attribution.to_dict().items() if v is not None},
    }


def create_admin_app(
    *,
    governor: Governor,
    keyring: KeyRing,
    ledger_url: str,
    token_env: str,
    open_ledger: Callable[[str], Any],
    breakers: BreakerRegistry | None = None,
    reloader: PolicyReloader | None = None,
    alerts: Any | None = None,
    overrides: Any | None = None,
    forecast_file: Path | None = None,
) -> FastAPI:
    # No interactive docs page: it would fetch the OpenAPI document without the token.
    app = FastAPI(title="fiscus admin", version="1", docs_url=None, redoc_url=None, openapi_url=None)
    bearer = HTTPBearer(auto_error=False)

    def admin(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if not configured([token_env]):
            raise HTTPException(401, f"admin API disabled: set {token_env}")
        if credentials is None or not matches(credentials.credentials, [token_env]):
            raise HTTPException(401, "invalid admin token", headers={"www-authenticate": "Bearer"})

    guarded = [Depends(admin)]

    @app.get("/openapi.json", include_in_schema=False, dependencies=guarded)
    def openapi() -> JSONResponse:
        """The admin API's OpenAPI document."""
        return JSONResponse(app.openapi())

    @app.post("/keys", status_code=201, dependencies=guarded)
    def create_key(body: NewKey) -> dict[str, Any]:
        """Create a virtual key. The secret is in `key` and is shown this once only."""
        fields = body.model_dump(exclude={"allow", "on_disallowed"})
        try:
            secret, key = keyring.create(**fields, claims=body.compiled())
        except FiscusError as exc:
            raise HTTPException(400, str(exc)) from None
        return {"key": secret, **_key_view(key)}

    @app.get("/keys", dependencies=guarded)
    def list_keys() -> list[dict[str, Any]]:
        return [_key_view(key) for key in keyring.list()]

    @app.put("/keys/{key_id}/claims", dependencies=guarded)
    def set_claims(key_id: str, body: Claims) -> dict[str, Any]:
        """Replace what a key's requests may claim (the whole allow-list)."""
        try:
            return _key_view(keyring.set_claims(key_id, body.compiled()))
        except KeyNotFoundError as exc:
            raise HTTPException(404, str(exc)) from None

    @app.delete("/keys/{key_id}", dependencies=guarded)
    def revoke_key(key_id: str) -> dict[str, Any]:
        try:
            return _key_view(keyring.revoke(key_id))
        except KeyNotFoundError as exc:
            raise HTTPException(404, str(exc)) from None

    @app.get("/dashboard", include_in_schema=False)
    def dashboard() -> HTMLResponse:
        """The dashboard page: budgets with their pace, spend by agent, model, team and day, breakers. It holds
        no data itself: the browser reads the routes below with the admin token the user enters."""
        return HTMLResponse(_dashboard_html(), headers={"cache-control": "no-store"})

    @app.get("/budgets", dependencies=guarded)
    def budgets() -> list[dict[str, Any]]:
        """Every budget: limit, spent, reserved, utilisation, window reset."""
        return [_plain(status) for status in governor.status()]

    @app.get("/calibration", dependencies=guarded)
    def calibration() -> list[dict[str, Any]]:
        """What this gateway process learnt from settled calls, per provider, model and agent (agent null: the
        model's): billed / counted input tokens (the next estimates' factor) and settled / estimated cost."""
        engine = getattr(governor, "engine", None)
        if engine is None:
            return []
        return [_plain(row) for row in engine.calibration.rows()]

    @app.get("/spend", dependencies=guarded)
    def spend(
        by: str = Query("", description="comma-separated dimensions, e.g. team,agent or model,day"),
        window: str | None = Query(None, description="hour, day, week or month back from now"),
        since: datetime | None = None,
        until: datetime | None = None,
        where: list[str] = Query(default_factory=list, description="dimension=value filters"),
    ) -> list[dict[str, Any]]:
        from fiscus.ledger import SpendQuery

        if window is not None:
            if window not in _WINDOWS:
                raise HTTPException(400, f"unknown window {window!r}; known: {', '.join(_WINDOWS)}")
            since = datetime.now(UTC) - _WINDOWS[window]
        filters = {}
        for item in where:
            name, sep, value = item.partition("=")
            if not sep:
                raise HTTPException(400, f"filter {item!r} must look like dimension=value")
            filters[name] = value
        try:
            query = SpendQuery(by=tuple(p for p in by.split(",") if p.strip()), since=since, until=until, where=filters)
            with open_ledger(ledger_url) as ledger:
                rows = ledger.spend(query)
        except FiscusError as exc:
            raise HTTPException(400, str(exc)) from None
        return [
            {
                **_plain(row),
                "total_usd": format(row.total_usd, "f"),
                "saved_usd": format(row.saved.total, "f"),
                "refused": row.refused,
            }
            for row in rows
        ]

    app.include_router(
        cases_router(governor=governor, ledger_url=ledger_url, open_ledger=open_ledger, since_window=_since_window),
        dependencies=guarded,
    )
    review = review_router(
        governor=governor, alerts=alerts, ledger_url=ledger_url, open_ledger=open_ledger, forecast_file=forecast_file
    )
    app.include_router(review, dependencies=guarded)
    app.include_router(breakers_router(registry=breakers, reloader=reloader), dependencies=guarded)
    app.include_router(overrides_router(governor=governor, keyring=keyring, overrides=overrides), dependencies=guarded)
    return app


def _since_window(window: str) -> datetime:
    """The start of a named window back from now; an unknown name is a 400."""
    if window not in _WINDOWS:
        raise HTTPException(400, f"unknown window {window!r}; known: {', '.join(_WINDOWS)}")
    return datetime.now(UTC) - _WINDOWS[window]
