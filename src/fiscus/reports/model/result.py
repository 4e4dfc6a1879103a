"""What `fiscus model` reports: per run and per month P50 / P95 cost, tokens and calls, by workflow (a whole run,
subagents included) and by task class (one agent's part of a run, a session in the ledger), and the policy its
P95 ceilings make.

The per-run figures are nearest-rank percentiles of the simulated runs, computed by the same code as
`fiscus forecast`; a month is the per-run figure × runs per day × days (P50: the operating target; P95: the ceiling
to budget, an envelope).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fiscus.pricing import PriceCatalogue
from fiscus.reports.forecast import Forecast, GroupForecast, Run, budget_policy, nearest_rank, summarise
from fiscus.reports.model.simulate import SimRun, Simulator, Thread, prices_moment
from fiscus.reports.model.spec import WorkloadSpec
from fiscus.reports.spend import dec

# Finance's contract in the seeds: alerts at 50 / 80 / 100 % of the envelope (monitor, review, halt).
ALERTS: tuple[dict[str, Any], ...] = (
    {"at": "0.5", "action": "warn", "message": "50 % of the modelled P95 month: monitor"},
    {"at": "0.8", "action": "warn", "message": "80 % of the modelled P95 month: review"},
    {"at": "1.0", "action": "partial", "message": "the modelled P95 month is spent: halt"},
)


@dataclass(frozen=True, slots=True)
class GroupFigures:
    """One workflow's runs or one task class's threads: the forecast figures plus the token split."""

    kind: str  # "workflow" or "task_class"
    forecast: GroupForecast
    input_p50: int
    input_p95: int
    output_p50: int
    output_p95: int
    models: dict[str, Decimal] = field(default_factory=dict)  # task class: model → share of its calls
    input_mtok: Decimal | None = None  # task class: the mix's weighted input price, $/MTok
    output_mtok: Decimal | None = None

    @property
    def name(self) -> str:
        return str(self.forecast.group)

    @property
    def cost_per_call(self) -> Decimal:
        f = self.forecast
        return f.cost / f.calls if f.calls else Decimal(0)

    @property
    def month_per_call(self) -> Decimal | None:
        """What one call per run costs over the month: how the month scales with the calls a run makes."""
        runs = self.forecast.period_runs
        return None if runs is None else self.cost_per_call * runs

    def to_dict(self) -> dict[str, Any]:
        data = self.forecast.to_dict()
        data["name"] = data.pop("group")
        data["per_run"]["input_tokens"] = {"p50": self.input_p50, "p95": self.input_p95}
        data["per_run"]["output_tokens"] = {"p50": self.output_p50, "p95": self.output_p95}
        data["cost_per_call_usd"] = dec(self.cost_per_call)
        per_call = self.month_per_call
        data["month_per_call_usd"] = None if per_call is None else dec(per_call)
        if self.kind == "task_class":
            data["models"] = {m: dec(s) for m, s in self.models.items()}
            data["weighted_input_mtok_usd"] = None if self.input_mtok is None else dec(self.input_mtok)
            data["weighted_output_mtok_usd"] = None if self.output_mtok is None else dec(self.output_mtok)
        return data


@dataclass(frozen=True, slots=True)
class ModelResult:
    spec: WorkloadSpec
    prices_at: str
    workflows: list[GroupFigures]
    task_classes: list[GroupFigures]
    threads: dict[str, list[Thread]]  # task class → every simulated thread (for calibration)
    notes: list[str] = field(default_factory=list)

    @property
    def month_p50(self) -> Decimal:
        return sum((w.forecast.period_p50 or Decimal(0) for w in self.workflows), Decimal(0))

    @property
    def month_p95(self) -> Decimal:
        return sum((w.forecast.period_p95 or Decimal(0) for w in self.workflows), Decimal(0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "prices_at": self.prices_at,
            "samples": self.spec.samples,
            "seed": self.spec.seed,
            "days": self.spec.days,
            "month_usd": {"p50": dec(self.month_p50), "p95": dec(self.month_p95)},
            "workflows": [w.to_dict() for w in self.workflows],
            "task_classes": [t.to_dict() for t in self.task_classes],
            "notes": self.notes,
        }

    def policy(self, by: str = "workflow") -> str:
        """Monthly budgets at each group's P95 ceiling with alerts at 50 / 80 / 100 %."""
        groups = self.workflows if by == "workflow" else self.task_classes
        result = Forecast(by, [g.forecast for g in groups], self.spec.days)
        return budget_policy(result, thresholds=ALERTS, made_by="fiscus model", runs_are="simulated")


def model_workload(spec: WorkloadSpec, catalogue: PriceCatalogue, *, source: str = "<spec>") -> ModelResult:
    """Simulate the spec's workflows and summarise them by workflow and by task class."""
    simulator = Simulator(spec, catalogue, source=source)
    runs = simulator.run()
    workflows = [_workflow(spec, name, samples) for name, samples in runs.items()]
    threads: dict[str, list[Thread]] = {}
    per_day: dict[str, Decimal] = {}
    for name, samples in runs.items():
        volume = spec.workflows[name].runs_per_day
        for run in samples:
            for thread in run.threads:
                threads.setdefault(thread.task_class, []).append(thread)
                per_day[thread.task_class] = per_day.get(thread.task_class, Decimal(0)) + volume / len(samples)
    task_classes = [_task_class(simulator, name, threads[name], per_day[name], spec.days) for name in sorted(threads)]
    notes = _notes(spec, simulator)
    at = prices_moment(spec.prices_at)
    return ModelResult(spec, at.date().isoformat(), workflows, task_classes, threads, notes)


def _workflow(spec: WorkloadSpec, name: str, samples: Sequence[SimRun]) -> GroupFigures:
    totals = []
    inputs, outputs = [], []
    for run in samples:
        calls = [c for t in run.threads for c in t.calls]
        total = Run(sum((c.cost for c in calls), Decimal(0)), sum(c.usage.total_tokens for c in calls), len(calls))
        totals.append(total)
        inputs.append(sum(c.usage.total_input_tokens for c in calls))
        outputs.append(sum(c.usage.output_tokens for c in calls))
    figures = summarise(name, totals, runs_per_day=spec.workflows[name].runs_per_day, days=spec.days)
    return _figures("workflow", figures, inputs, outputs)


def _task_class(simulator: Simulator, name: str, threads: list[Thread], per_day: Decimal, days: int) -> GroupFigures:
    totals = []
    inputs, outputs = [], []
    counts: dict[str, int] = {}
    for thread in threads:
        totals.append(Run(thread.cost, sum(c.usage.total_tokens for c in thread.calls), len(thread.calls)))
        inputs.append(sum(c.usage.total_input_tokens for c in thread.calls))
        outputs.append(sum(c.usage.output_tokens for c in thread.calls))
        for call in thread.calls:
            counts[call.model] = counts.get(call.model, 0) + 1
    figures = summarise(name, totals, runs_per_day=per_day, days=days)
    calls = sum(counts.values())
    shares = {m: Decimal(n) / calls for m, n in sorted(counts.items())} if calls else {}
    # The weighted prices come from the spec's mix (exact), not from the draws (which only approach it).
    agents = [a for a in simulator.agents.values() if a.task_class == name]
    input_mtok = output_mtok = None
    if len(agents) == 1:
        mix = agents[0].spec.mix()
        input_mtok = sum((mix[m] * sheet.input.base for m, sheet in agents[0].models), Decimal(0))
        output_mtok = sum((mix[m] * sheet.output.base for m, sheet in agents[0].models), Decimal(0))
    return GroupFigures("task_class", figures, *_p50_p95(inputs), *_p50_p95(outputs), shares, input_mtok, output_mtok)


def _figures(kind: str, figures: GroupForecast, inputs: list[int], outputs: list[int]) -> GroupFigures:
    return GroupFigures(kind, figures, *_p50_p95(inputs), *_p50_p95(outputs))


def _p50_p95(values: list[int]) -> tuple[int, int]:
    ordered = sorted(values)
    return nearest_rank(ordered, 0.5), nearest_rank(ordered, 0.95)


def _notes(spec: WorkloadSpec, simulator: Simulator) -> list[str]:
    notes = []
    for name, agent in simulator.agents.items():
        cache = agent.spec.cache
        if cache is None or not cache.computed:
            continue
        per_day = simulator.calls_per_day[name]
        state = "stays cached between runs" if agent.warm else "is written by each run's first call"
        notes.append(
            f"{name}: about {per_day:,.0f} calls a day; its {agent.spec.system_prompt:,}-token stable prefix "
            f"{state} ({cache.ttl} cache lifetime)"
        )
    return notes
