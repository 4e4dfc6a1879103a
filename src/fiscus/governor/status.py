"""`BudgetStatus`: where each budget instance stands now — limit, spent, reserved, utilisation, reset, threshold —
and, for a calendar window, where its pace so far leads by the reset (`Pace`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from fiscus.engine.decide import EFFECTS, utilisation_of
from fiscus.engine.decision import Action
from fiscus.engine.engine import Engine
from fiscus.engine.plan import instance_stem
from fiscus.engine.ports import Amounts, Limits
from fiscus.engine.windows import WindowInstance
from fiscus.money import from_nanos
from fiscus.policy.types import Budget
from fiscus.stores.base import BudgetStore


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    budget: str
    scope: str
    values: tuple[tuple[str, str], ...]  # the per-value instance (e.g. user=alice); () for a single budget
    window: str  # window kind label: month, rolling 5h, session…
    window_id: str
    limits: Limits  # nominal
    spent: Amounts
    reserved: Amounts
    utilisation: Decimal
    meter: str
    resets_at: datetime | None
    threshold: Decimal | None  # the highest threshold reached
    action: Action  # the action of that threshold (allow when none)
    pace: Pace | None = None  # calendar windows, once far enough in to tell

    @property
    def state(self) -> str:
        return EFFECTS[self.action].state

    def to_dict(self) -> dict[str, Any]:
        def amounts(a: Amounts) -> dict[str, str | int]:
            return {"usd": format(from_nanos(a.nanos), "f"), "tokens": a.tokens, "requests": a.requests}

        limits, pace = self.limits, self.pace
        return {
            "budget": self.budget,
            "scope": self.scope,
            "values": dict(self.values),
            "window": self.window,
            "window_id": self.window_id,
            "limit": {
                "usd": format(from_nanos(limits.nanos), "f") if limits.nanos is not None else None,
                "tokens": limits.tokens,
                "requests": limits.requests,
            },
            "spent": amounts(self.spent),
            "reserved": amounts(self.reserved),
            "utilisation": format(self.utilisation.quantize(Decimal("0.0001")), "f"),
            "meter": self.meter,
            "resets_at": self.resets_at.isoformat() if self.resets_at else None,
            "threshold": format(self.threshold, "f") if self.threshold is not None else None,
            "action": str(self.action),
            "state": self.state,
            "projected_utilisation": format(pace.projected.quantize(Decimal("0.0001")), "f") if pace else None,
            "exhausts_at": pace.exhausts_at.isoformat() if pace and pace.exhausts_at else None,
        }


# Too early in a window a projection is noise (one call in the first minute of a month "projects" to thousands):
# a pace is given from this share of the window on, and never before this many seconds.
PACE_FROM_SHARE = Decimal("0.02")
PACE_FROM_SECONDS = 300


@dataclass(frozen=True, slots=True)
class Pace:
    """A calendar window's use so far, extrapolated at the same rate: the utilisation it reaches by the reset
    (on its most used meter) and, when that passes 100 %, when the limit is reached."""

    projected: Decimal
    exhausts_at: datetime | None

    @property
    def over(self) -> bool:
        """On track to pass the limit before the window resets."""
        return self.projected > 1


def pace_of(used: Amounts, limits: Limits, starts_at: float, resets_at: float, now: float) -> Pace | None:
    """The pace of `used` between `starts_at` and `now`, carried to `resets_at`; None too early to tell."""
    length, elapsed = Decimal(resets_at - starts_at), Decimal(now - starts_at)
    if length <= 0 or elapsed < max(PACE_FROM_SECONDS, length * PACE_FROM_SHARE) or elapsed >= length:
        return None
    projected, first = Decimal(0), None
    for value, limit in ((used.nanos, limits.nanos), (used.tokens, limits.tokens), (used.requests, limits.requests)):
        if not limit or not value:
            continue
        projected = max(projected, Decimal(value) * length / (Decimal(limit) * elapsed))
        if value < limit:
            reached = starts_at + float(elapsed * limit / value)  # the same rate on from now
            if reached < resets_at and (first is None or reached < first):
                first = reached
    return Pace(projected, datetime.fromtimestamp(first, UTC) if first is not None else None)


def budget_statuses(engine: Engine, store: BudgetStore, *, now: float) -> list[BudgetStatus]:
    """Every budget with a fixed scope, and every instance of a per-value or per-session budget the store can
    list (stores without `keys_with_prefix` show those budgets' fixed part only)."""
    out: list[BudgetStatus] = []
    for budget in engine.policy.budgets:
        for values, instance in _instances(engine, store, budget, now):
            stem = instance_stem(budget, values)
            keys = tuple(f"{stem}|{wid}" for wid in instance.ids)
            counters = store.counters(keys, now=now)
            spent, reserved = Amounts(), Amounts()
            for counter in counters.values():
                spent, reserved = spent + counter.spent, reserved + counter.reserved
            utilisation, meter = utilisation_of(spent + reserved, budget.limits)
            reached = [t for t in budget.thresholds if t.at <= utilisation]
            top = max(reached, key=lambda t: (t.at, t.action.severity)) if reached else None
            pace = None
            if budget.window.kind == "calendar" and instance.starts_at is not None and instance.resets_at is not None:
                pace = pace_of(spent + reserved, budget.limits, instance.starts_at, instance.resets_at, now)
            out.append(
                BudgetStatus(
                    budget=budget.name,
                    scope=budget.scope_label(),
                    values=values,
                    window=budget.window.label,
                    window_id=instance.ids[0],
                    limits=budget.limits,
                    spent=spent,
                    reserved=reserved,
                    utilisation=utilisation,
                    meter=meter,
                    resets_at=datetime.fromtimestamp(instance.resets_at, UTC)
                    if instance.resets_at is not None
                    else None,
                    threshold=top.at if top else None,
                    action=max((t.action for t in reached), key=lambda a: a.severity) if reached else Action.ALLOW,
                    pace=pace,
                )
            )
    return out


def _instances(
    engine: Engine, store: BudgetStore, budget: Budget, now: float
) -> list[tuple[tuple[tuple[str, str], ...], WindowInstance]]:
    listed = bool(budget.each_dimensions) or budget.window.kind == "session"
    if not listed:
        instance = engine.window(budget.window, now, None)
        return [((), instance)] if instance is not None else []
    prefix = f"b:{budget.name}|"
    try:
        keys = store.keys_with_prefix(prefix, now=now)
    except NotImplementedError:
        return []
    found: dict[tuple[tuple[str, str], ...], WindowInstance] = {}
    for key in keys:
        parts = key[len(prefix) :].split("|")
        window_id = parts[-1]
        values = tuple((dim, unquote(value)) for dim, _, value in (p.partition("=") for p in parts[:-1]))
        if tuple(dim for dim, _ in values) != budget.each_dimensions or values in found:
            continue
        session = unquote(window_id.removeprefix("session:")) if budget.window.kind == "session" else None
        instance = engine.window(budget.window, now, session)
        if instance is not None and window_id in instance.ids:
            found[values] = instance
    return sorted(found.items())
