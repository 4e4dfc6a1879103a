"""Admin routes for the operator's controls: list the circuit breakers (as shared by every worker), reset one,
read the policy in force and reload it (validated first: a broken file keeps the old policy, 422 with why)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse

from fiscus.governor.reload import PolicyReloader
from fiscus.guards.listing import breaker_rows
from fiscus.guards.registry import BreakerRegistry


def breakers_router(*, registry: BreakerRegistry | None, reloader: PolicyReloader | None) -> APIRouter:
    router = APIRouter()

    @router.get("/breakers")
    async def list_breakers() -> list[dict[str, Any]]:
        """Every circuit breaker any worker has seen: state, why it opened, when it reopens, trips, and its
        account-wide figures (this hour's spend, the median hour, the level; calls and failures in the window)."""
        if registry is None:
            return []
        return await asyncio.to_thread(breaker_rows, registry)

    @router.post("/breakers/{name:path}/reset")
    async def reset_breaker(name: str) -> dict[str, Any]:
        """Close breaker `name` (e.g. `global`, `agent:researcher`, `key:<id>`) in every worker; its figures start
        again, its trip stays in the post-mortem."""
        if registry is None:
            raise HTTPException(404, "this gateway keeps no breakers")
        try:
            record = await asyncio.to_thread(registry.reset, name)
        except KeyError:
            known = ", ".join(r["name"] for r in await asyncio.to_thread(breaker_rows, registry)) or "none"
            raise HTTPException(404, f"no breaker named {name!r}; known: {known}") from None
        return {"name": name, "state": record.state, "since": record.since}

    @router.get("/policy")
    def policy() -> dict[str, Any]:
        """The policy this worker enforces: its version (a hash of the validated rules) and file."""
        if reloader is None:
            raise HTTPException(404, "this gateway has no policy file to reload")
        return {"version": reloader.version, "source": str(reloader.policy_path) if reloader.policy_path else None}

    @router.post("/policy/reload")
    async def reload_policy() -> JSONResponse:
        """Read the policy file again; it replaces the running policy only once it validates, and reaches the
        other workers through the shared breaker state. A broken file: 422, the old policy stays, `error` says why."""
        if reloader is None:
            raise HTTPException(404, "this gateway has no policy file to reload")
        result = await asyncio.to_thread(reloader.reload, why="admin API")
        return JSONResponse(result.to_dict(), status_code=200 if result.ok else 422)

    return router
