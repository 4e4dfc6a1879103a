"""Every breaker as an operator reads it (`fiscus breakers list`, `GET /admin/breakers`): its state as shared by
every process, why it opened, and its account-wide figures against the spend-rate levels."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fiscus.errors import FiscusError
from fiscus.guards.breaker import BreakerState
from fiscus.guards.registry import BreakerRegistry
from fiscus.guards.sharing import LEVELS


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat() if epoch else None


def breaker_rows(registry: BreakerRegistry) -> list[dict[str, Any]]:
    """Fresh rows: the shared records and windows are read first (one round trip each)."""
    registry.sync()
    account = registry.account
    with registry._lock:
        breakers = list(registry._breakers.values())
    if account is not None:
        try:
            account.exchange([b.scope for b in breakers])
        except FiscusError as exc:
            registry._store_failed(exc)
    now = registry._clock()
    rows = []
    for breaker in sorted(breakers, key=lambda b: (b.scope != "global", b.scope)):
        state = breaker.state
        trip = breaker.last_trip if state is not BreakerState.CLOSED else None
        row: dict[str, Any] = {
            "name": breaker.scope,
            "scope": breaker.scope,
            "state": str(state),
            "reason": trip.reason if trip else None,
            "message": trip.message if trip else None,
            "since": _iso(breaker.since),
            "reopens_at": _iso(trip.reopens_at) if trip and state is BreakerState.OPEN else None,
            "trips": breaker.trips,
            "level": None,
        }
        if account is not None:
            figures = account.figures(breaker.scope, breaker.config, now)
            row.update(figures.to_dict())
            ratio = figures.ratio()
            if ratio is not None and breaker.config.spend_rate_k is not None:
                row["level"] = next((name for name, at in LEVELS if ratio >= at), "normal")
        rows.append(row)
    return rows
