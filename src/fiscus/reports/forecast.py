"""The pre-launch cost model: what one run of each task class (or workflow, agent…) costs at P50 and P95, from
runs already recorded (a week of staging traces, say), projected over the volume expected in production — the
figures a team agrees with Finance before launch — and a policy whose monthly budgets follow them.

A run is one session: the calls that share `session`. A call outside any session is a run of its own.
Percentiles are nearest-rank over the runs' exact costs (no interpolation, no float). A projection multiplies a
per-run figure by the runs in the period: P50 × volume is the operating target, P95 × volume the ceiling to
budget (an envelope: the P95 of a whole month's total is lower when runs vary independently).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any

import yaml

from fiscus.attribution import DIMENSIONS
from fiscus.errors import FiscusError
from fiscus.events.cost_event import CostEvent
from fiscus.ledger.base import Ledger, SpendQuery
from fiscus.ledger.cases import P50, P95, RunStats, stats_of

# What runs can be grouped by: who or what a run is for (a session is the run itself).
GROUP_DIMENSIONS: tuple[str, ...] = tuple(d for d in DIMENSIONS if d not in ("session", "parent_session"))
_CENT = Decimal("0.01")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.:/@+=-]+")  # what a policy's budget name may not hold


class ForecastError(FiscusError):
    """A forecast cannot be made as asked (an unknown dimension, a volume for no recorded group)."""


@dataclass(slots=True)
class Run:
    """One recorded run's totals."""

    cost: Decimal = Decimal(0)
    tokens: int = 0
    calls: int = 0


def nearest_rank(ordered: Sequence[Any], q: float) -> Any:
    """The nearest-rank `q` percentile of values sorted ascending: the smallest value with at least `q` of them
    at or below it."""
    if not ordered:
        raise ValueError("no values")
    return ordered[max(math.ceil(q * len(ordered)), 1) - 1]


@dataclass(frozen=True, slots=True)
class GroupForecast:
    """One group's runs: per-run P50 / P95 / mean, and the projection over `runs_per_day` × `days` if given."""

    group: str | None
    runs: int
    calls: int
    cost: Decimal  # all recorded runs together
    cost_p50: Decimal
    cost_p95: Decimal
    cost_mean: Decimal
    tokens_p50: int
    tokens_p95: int
    calls_p50: int
    calls_p95: int
    runs_per_day: Decimal | None = None
    days: int = 30

    @property
    def period_runs(self) -> Decimal | None:
        return None if self.runs_per_day is None else self.runs_per_day * self.days

    @property
    def period_p50(self) -> Decimal | None:
        """The operating target for the period: P50 per run × runs."""
        runs = self.period_runs
        return None if runs is None else self.cost_p50 * runs

    @property
    def period_p95(self) -> Decimal | None:
        """The ceiling for the period: P95 per run × runs."""
        runs = self.period_runs
        return None if runs is None else self.cost_p95 * runs

    def to_dict(self) -> dict[str, Any]:
        def money(value: Decimal | None) -> str | None:
            return None if value is None else format(value.normalize(), "f")

        return {
            "group": self.group,
            "runs": self.runs,
            "calls": self.calls,
            "cost_usd": money(self.cost),
            "per_run": {
                "cost_usd": {"p50": money(self.cost_p50), "p95": money(self.cost_p95), "mean": money(self.cost_mean)},
                "tokens": {"p50": self.tokens_p50, "p95": self.tokens_p95},
                "calls": {"p50": self.calls_p50, "p95": self.calls_p95},
            },
            "projection": None
            if self.runs_per_day is None
            else {
                "runs_per_day": money(self.runs_per_day),
                "days": self.days,
                "p50_usd": money(self.period_p50),
                "p95_usd": money(self.period_p95),
            },
        }


@dataclass(frozen=True, slots=True)
class Forecast:
    by: str
    groups: list[GroupForecast]
    days: int = 30
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"by": self.by, "days": self.days, "groups": [g.to_dict() for g in self.groups], "notes": self.notes}


def group_runs(events: Iterable[CostEvent], by: str) -> dict[str | None, list[Run]]:
    """Runs per value of `by` (None: calls without it). A session's calls count in its first call's group."""
    if by not in GROUP_DIMENSIONS:
        raise ForecastError(f"cannot group runs by {by!r}; use one of {', '.join(GROUP_DIMENSIONS)}")
    runs: dict[str, tuple[str | None, Run]] = {}
    for event in events:
        attribution = event.attribution
        key = f"s:{attribution.session}" if attribution.session else f"e:{event.id}"
        found = runs.get(key)
        if found is None:
            found = runs[key] = (getattr(attribution, by), Run())
        run = found[1]
        run.cost += event.cost.total
        run.tokens += event.usage.total_tokens
        run.calls += 1
    grouped: dict[str | None, list[Run]] = {}
    for group, run in runs.values():
        grouped.setdefault(group, []).append(run)
    return grouped


def ledger_runs(
    ledger: Ledger,
    by: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    where: Mapping[str, str] | None = None,
) -> dict[str | None, RunStats]:
    """The runs of `group_runs` over the ledger's events in the window, as per-group statistics the ledger
    computes (`Ledger.run_stats`: inside the database from the session rollup, not from every event)."""
    if by not in GROUP_DIMENSIONS:
        raise ForecastError(f"cannot group runs by {by!r}; use one of {', '.join(GROUP_DIMENSIONS)}")
    query = SpendQuery(by=(by,), since=since, until=until, where=dict(where or {}))
    return {s.group: s for s in ledger.run_stats(query, (P50, P95))}


def forecast(
    events: Iterable[CostEvent] | Mapping[str | None, list[Run]] | Mapping[str | None, RunStats],
    *,
    by: str = "task_class",
    runs_per_day: Decimal | Mapping[str, Decimal] | None = None,
    days: int = 30,
) -> Forecast:
    """Per-run percentiles for each group of `by`, from events or runs already grouped (`ledger_runs`);
    `runs_per_day` (one figure for every group, or one per group) adds the projection over `days`."""
    if days < 1:
        raise ForecastError(f"days must be at least 1, got {days}")
    grouped = dict(events) if isinstance(events, Mapping) else group_runs(events, by)
    if isinstance(runs_per_day, Mapping):
        unknown = sorted(set(runs_per_day) - {g for g in grouped if g is not None})
        if unknown:
            known = ", ".join(sorted(g for g in grouped if g is not None)) or "none"
            raise ForecastError(f"no recorded runs for {by}={', '.join(unknown)} (recorded: {known})")
    groups = []
    for group in sorted(grouped, key=lambda g: (g is None, g or "")):
        if isinstance(runs_per_day, Mapping):
            volume = runs_per_day.get(group) if group is not None else None
        else:
            volume = runs_per_day
        runs = grouped[group]
        if isinstance(runs, RunStats):
            groups.append(from_stats(runs, runs_per_day=volume, days=days))
        else:
            groups.append(summarise(group, runs, runs_per_day=volume, days=days))
    notes = [f"{g.group}: only {g.runs} run(s) recorded; P95 is not reliable below 20" for g in groups if g.runs < 20]
    return Forecast(by, groups, days, notes)


def summarise(group: str | None, runs: Sequence[Run], *, runs_per_day: Decimal | None, days: int) -> GroupForecast:
    """One group's runs as per-run P50 / P95 / mean, projected over `runs_per_day` × `days` if given."""
    stats = stats_of(group, [(r.cost, r.tokens, r.calls) for r in runs], (P50, P95))
    return from_stats(stats, runs_per_day=runs_per_day, days=days)


def from_stats(stats: RunStats, *, runs_per_day: Decimal | None, days: int) -> GroupForecast:
    """A group's forecast from its run statistics (`P50` and `P95` among their ranks)."""
    n = stats.runs
    return GroupForecast(
        group=stats.group,
        runs=n,
        calls=stats.calls,
        cost=stats.cost,
        cost_p50=stats.cost_at[P50.position(n)],
        cost_p95=stats.cost_at[P95.position(n)],
        cost_mean=stats.cost / n,
        tokens_p50=stats.tokens_at[P50.position(n)],
        tokens_p95=stats.tokens_at[P95.position(n)],
        calls_p50=stats.calls_at[P50.position(n)],
        calls_p95=stats.calls_at[P95.position(n)],
        runs_per_day=runs_per_day,
        days=days,
    )


def budget_policy(
    result: Forecast,
    *,
    thresholds: Sequence[Mapping[str, Any]] | None = None,
    made_by: str = "fiscus forecast",
    runs_are: str = "recorded",
) -> str:
    """A policy (YAML) with one monthly budget per projected group: the limit is the group's P95 ceiling for the
    period (rounded up to the cent); `thresholds` as a policy writes them, else the defaults (warn 80 %,
    downgrade + compress 90 %, partial 100 %)."""
    budgets = []
    for g in result.groups:
        ceiling = g.period_p95
        if g.group is None or ceiling is None:
            continue
        limit = max(ceiling.quantize(_CENT, rounding=ROUND_CEILING), _CENT)
        budgets.append(
            {
                "name": _NAME_UNSAFE.sub("-", f"{result.by}-{g.group}-monthly"),
                "description": (
                    f"P95 per run ${format(g.cost_p95.normalize(), 'f')} x {format(g.runs_per_day, 'f')} runs/day"
                    f" x {g.days} days, from {g.runs} {runs_are} runs"
                ),
                "scope": {result.by: g.group},
                "window": "month",
                "limit": {"usd": format(limit, "f")},
            }
        )
        if thresholds:
            budgets[-1]["thresholds"] = [dict(t) for t in thresholds]
    if not budgets:
        raise ForecastError("no group has a projection: give the expected volume (runs per day)")
    head = f"# Monthly budgets from `{made_by}`: each limit is its group's P95 ceiling.\n"
    return head + yaml.safe_dump({"version": 1, "budgets": budgets}, sort_keys=False, allow_unicode=True)
