"""Calibration: the spec's figures against what staging recorded for the same task classes, and which assumption
is off — steps (calls a session makes), growth (input added per step), cache hit, output length.

Both sides are read the same way: a thread of the model and a session of the ledger (a call outside any session
is one of its own) are one agent's part of a run. Steps and cost compare at P50 and P95; growth is each session's
input increase per call, (last − first) / (calls − 1), at P50; the cache hit is cache reads over all input; output
is tokens per call at P50. An assumption is off when staging differs by more than the tolerance (relative), the
cache hit when it differs by more than `cache_points` (absolute: 0.1 is ten points).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fiscus.events.cost_event import CostEvent
from fiscus.reports.forecast import nearest_rank
from fiscus.reports.model.result import ModelResult
from fiscus.reports.spend import dec
from fiscus.usage.model import Usage

# The spec fields each assumption comes from, named in the verdict.
_FIELDS = {
    "steps": ("steps", "retries"),
    "growth": ("user_input", "tool_results", "context"),
    "cache_hit": ("cache",),
    "output": ("output",),
}


@dataclass(frozen=True, slots=True)
class Profile:
    """One task class's threads (or sessions), measured."""

    threads: int
    calls_p50: int
    calls_p95: int
    cost_p50: Decimal
    cost_p95: Decimal
    growth_p50: int
    cache_hit: Decimal
    output_p50: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "sessions": self.threads,
            "calls": {"p50": self.calls_p50, "p95": self.calls_p95},
            "cost_usd": {"p50": dec(self.cost_p50), "p95": dec(self.cost_p95)},
            "growth_tokens_per_step_p50": self.growth_p50,
            "cache_hit": dec(self.cache_hit.quantize(Decimal("0.0001"))),
            "output_tokens_per_call_p50": self.output_p50,
        }


@dataclass(frozen=True, slots=True)
class Check:
    assumption: str  # steps | growth | cache_hit | output
    modelled: Decimal
    recorded: Decimal
    deviation: Decimal | None  # relative (points for the cache hit); None: the model assumes none, staging has some
    off: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "assumption": self.assumption,
            "modelled": dec(self.modelled),
            "recorded": dec(self.recorded),
            "deviation": None if self.deviation is None else dec(self.deviation.quantize(Decimal("0.0001"))),
            "off": self.off,
        }


@dataclass(frozen=True, slots=True)
class Calibration:
    task_class: str
    agents: tuple[str, ...]
    modelled: Profile
    recorded: Profile | None
    checks: tuple[Check, ...]

    @property
    def verdict(self) -> str:
        if self.recorded is None:
            return f"{self.task_class}: no sessions recorded for this task class in the window"
        off = [c for c in self.checks if c.off]
        if not off:
            return f"{self.task_class}: the spec matches staging within the tolerance"
        worst = max(off, key=lambda c: abs(c.deviation) if c.deviation is not None else Decimal("Infinity"))
        fields = " / ".join(f"agents.{a}.{f}" for a in self.agents for f in _FIELDS[worst.assumption])
        return (
            f"{self.task_class}: {worst.assumption} is off — spec {_show(worst, worst.modelled)}, staging "
            f"{_show(worst, worst.recorded)} ({_deviation(worst)}); revisit {fields}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_class": self.task_class,
            "modelled": self.modelled.to_dict(),
            "recorded": None if self.recorded is None else self.recorded.to_dict(),
            "checks": [c.to_dict() for c in self.checks],
            "off": [c.assumption for c in self.checks if c.off],
            "verdict": self.verdict,
        }


def profile(threads: Iterable[Sequence[tuple[Usage, Decimal]]]) -> Profile | None:
    """Measure threads given as their calls' (usage, cost), in call order; None when there are none."""
    calls, costs, growth, outputs = [], [], [], []
    read = total_input = 0
    for thread in threads:
        if not thread:
            continue
        calls.append(len(thread))
        costs.append(sum((cost for _, cost in thread), Decimal(0)))
        if len(thread) > 1:
            first, last = thread[0][0].total_input_tokens, thread[-1][0].total_input_tokens
            growth.append((last - first) // (len(thread) - 1))
        for usage, _ in thread:
            outputs.append(usage.output_tokens)
            read += usage.cache_read_tokens
            total_input += usage.total_input_tokens
    if not calls:
        return None
    calls.sort()
    costs.sort()
    return Profile(
        threads=len(calls),
        calls_p50=nearest_rank(calls, 0.5),
        calls_p95=nearest_rank(calls, 0.95),
        cost_p50=nearest_rank(costs, 0.5),
        cost_p95=nearest_rank(costs, 0.95),
        growth_p50=nearest_rank(sorted(growth), 0.5) if growth else 0,
        cache_hit=Decimal(read) / Decimal(total_input) if total_input else Decimal(0),
        output_p50=nearest_rank(sorted(outputs), 0.5),
    )


def sessions_by_task_class(events: Iterable[CostEvent]) -> dict[str, list[list[tuple[Usage, Decimal]]]]:
    """The ledger's sessions per task class, each as its calls' (usage, cost) oldest first."""
    sessions: dict[tuple[str, str], list[tuple[Usage, Decimal]]] = {}
    for event in events:
        task_class = event.attribution.task_class
        if task_class is None:
            continue
        key = event.attribution.session or f"call:{event.id}"
        sessions.setdefault((task_class, key), []).append((event.usage, event.cost.total))
    grouped: dict[str, list[list[tuple[Usage, Decimal]]]] = {}
    for (task_class, _), calls in sessions.items():
        grouped.setdefault(task_class, []).append(calls)
    return grouped


def calibrate(
    result: ModelResult,
    events: Iterable[CostEvent],
    *,
    tolerance: Decimal = Decimal("0.25"),
    cache_points: Decimal = Decimal("0.1"),
) -> list[Calibration]:
    """One calibration per task class of the spec, against the recorded sessions of that task class."""
    recorded = sessions_by_task_class(events)
    calibrations = []
    for task_class, threads in sorted(result.threads.items()):
        modelled = profile([(c.usage, c.cost) for c in t.calls] for t in threads)
        assert modelled is not None  # every task class of the result has threads
        measured = profile(recorded.get(task_class, []))
        agents = tuple(sorted({t.agent for t in threads}))
        checks = () if measured is None else _checks(modelled, measured, tolerance, cache_points)
        calibrations.append(Calibration(task_class, agents, modelled, measured, checks))
    return calibrations


def _checks(modelled: Profile, recorded: Profile, tolerance: Decimal, cache_points: Decimal) -> tuple[Check, ...]:
    checks = [
        _relative("steps", modelled.calls_p50, recorded.calls_p50, tolerance),
        _relative("growth", modelled.growth_p50, recorded.growth_p50, tolerance),
        _points("cache_hit", modelled.cache_hit, recorded.cache_hit, cache_points),
        _relative("output", modelled.output_p50, recorded.output_p50, tolerance),
    ]
    # Steps at P95 too: a spec can match the median and miss the tail (the loops a budget must cover).
    tail = _relative("steps", modelled.calls_p95, recorded.calls_p95, tolerance)
    if tail.off and not checks[0].off:
        checks[0] = tail
    return tuple(checks)


def _relative(name: str, modelled: int, recorded: int, tolerance: Decimal) -> Check:
    spec, seen = Decimal(modelled), Decimal(recorded)
    if spec == 0:
        return Check(name, spec, seen, None if seen else Decimal(0), bool(seen))
    deviation = (seen - spec) / spec
    return Check(name, spec, seen, deviation, abs(deviation) > tolerance)


def _points(name: str, modelled: Decimal, recorded: Decimal, tolerance: Decimal) -> Check:
    deviation = recorded - modelled
    return Check(name, modelled, recorded, deviation, abs(deviation) > tolerance)


def _show(check: Check, value: Decimal) -> str:
    if check.assumption == "cache_hit":
        return f"{(value * 100).quantize(Decimal('0.1'))} % of input from cache"
    unit = {"steps": "calls a session", "growth": "tokens more per step", "output": "output tokens a call"}
    return f"{value.normalize():,f} {unit[check.assumption]}".replace(".0 ", " ")


def _deviation(check: Check) -> str:
    if check.deviation is None:
        return "the spec assumes none"
    if check.assumption == "cache_hit":
        return f"{(check.deviation * 100).quantize(Decimal('0.1')):+} points"
    return f"{(check.deviation * 100).quantize(Decimal('1')):+} %"
