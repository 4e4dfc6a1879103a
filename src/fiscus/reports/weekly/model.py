"""What the weekly Finance–Engineering review reads: spend by product area (team), workflow and agent against
the P50 target and P95 ceiling per case, week over week with the change split into volume and efficiency, the
anomalies (each with an owner and a 48-hour due date), top movers, cache hit rate per workflow against its
target, context growth per workflow and cost per outcome per case."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from fiscus.reports.cases import CaseGroup
from fiscus.reports.spend import dec

_RATE = Decimal("0.0001")


def _d(value: Decimal | None) -> str | None:
    return None if value is None else dec(value)


def _rate(value: Decimal | None) -> str | None:
    return None if value is None else dec(value.quantize(_RATE))


@dataclass(slots=True)
class Line:
    """One group of one dimension, this week against the week before. Volume is cases (sessions; a call outside
    any session is a case of its own). The change splits exactly into `volume_effect` (the cases added or lost at
    last week's cost per case) and `efficiency_effect` (the rest: what a case now costs more or less)."""

    dimension: str
    name: str | None
    spend: Decimal
    spend_before: Decimal
    cases: int
    cases_before: int
    calls: int
    volume_effect: Decimal
    efficiency_effect: Decimal
    verdict: str  # volume | efficiency | down | new | flat
    case_p50: Decimal | None = None  # this week's cases, nearest rank
    case_p95: Decimal | None = None
    p50_target: Decimal | None = None
    p95_ceiling: Decimal | None = None
    target_source: str | None = None  # policy | forecast | model | prior weeks
    cache_hit_rate: Decimal = Decimal(0)
    mean_input: Decimal | None = None  # input tokens per call
    mean_input_before: Decimal | None = None

    @property
    def change(self) -> Decimal:
        return self.spend - self.spend_before

    @property
    def change_rate(self) -> Decimal | None:
        return self.change / self.spend_before if self.spend_before else None

    @property
    def volume_rate(self) -> Decimal | None:
        return Decimal(self.cases - self.cases_before) / self.cases_before if self.cases_before else None

    @property
    def cost_per_case(self) -> Decimal | None:
        return self.spend / self.cases if self.cases else None

    @property
    def cost_per_case_before(self) -> Decimal | None:
        return self.spend_before / self.cases_before if self.cases_before else None

    @property
    def above_p95(self) -> bool:
        return self.p95_ceiling is not None and self.case_p95 is not None and self.case_p95 > self.p95_ceiling

    @property
    def context_growth(self) -> Decimal | None:
        if self.mean_input is None or not self.mean_input_before:
            return None
        return self.mean_input / self.mean_input_before

    def to_dict(self) -> dict[str, Any]:
        return {
            "dimension": self.dimension,
            "name": self.name,
            "spend_usd": dec(self.spend),
            "spend_before_usd": dec(self.spend_before),
            "change_usd": dec(self.change),
            "change_rate": _rate(self.change_rate),
            "cases": self.cases,
            "cases_before": self.cases_before,
            "volume_rate": _rate(self.volume_rate),
            "calls": self.calls,
            "cost_per_case_usd": _d(self.cost_per_case),
            "cost_per_case_before_usd": _d(self.cost_per_case_before),
            "volume_effect_usd": dec(self.volume_effect),
            "efficiency_effect_usd": dec(self.efficiency_effect),
            "verdict": self.verdict,
            "case_p50_usd": _d(self.case_p50),
            "case_p95_usd": _d(self.case_p95),
            "p50_target_usd": _d(self.p50_target),
            "p95_ceiling_usd": _d(self.p95_ceiling),
            "target_source": self.target_source,
            "above_p95": self.above_p95,
            "cache_hit_rate": _rate(self.cache_hit_rate),
            "mean_input_tokens": _d(self.mean_input.quantize(Decimal(1))) if self.mean_input is not None else None,
            "mean_input_tokens_before": _d(self.mean_input_before.quantize(Decimal(1)))
            if self.mean_input_before is not None
            else None,
            "context_growth": _rate(self.context_growth),
        }


@dataclass(frozen=True, slots=True)
class Anomaly:
    """Something the review must give an owner: investigated and answered within 48 hours."""

    kind: str  # above_p95 | efficiency | an alert signal
    subject: str  # workflow=support-triage, budget=growth-day …
    summary: str
    owner: str | None
    due: datetime
    level: str = "warning"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "summary": self.summary,
            "owner": self.owner or "unassigned",
            "due": self.due.isoformat(),
            "level": self.level,
        }


@dataclass(slots=True)
class WeeklyReport:
    week: str  # ISO week, e.g. 2026-W49
    since: datetime
    until: datetime
    generated_at: datetime
    total: Line
    lines: dict[str, list[Line]]  # dimension → lines, dearest first
    anomalies: list[Anomaly]
    movers: list[Line]
    cases: list[CaseGroup]  # by workflow
    daily: list[tuple[str, Decimal]]  # (UTC day, spend) over the week
    cache_target: Decimal
    saved_usd: Decimal = Decimal(0)
    ungoverned_usd: Decimal = Decimal(0)
    notes: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"Weekly AI spend review {self.week}"

    @property
    def headline(self) -> str:
        t = self.total
        rate = t.change_rate
        change = "new spend" if rate is None else f"{'+' if rate >= 0 else ''}{(rate * 100).quantize(Decimal(1))} %"
        text = f"${t.spend.quantize(Decimal('0.01'))} this week ({change} on the week before)"
        vol = t.volume_rate
        if vol is not None and t.change > 0:
            grew = f"cases {'+' if vol >= 0 else ''}{(vol * 100).quantize(Decimal(1))} %"
            text += f"; {grew}, " + (
                "so the rise is volume (cost per case steady or down)"
                if t.verdict == "volume"
                else "and cost per case rose: efficiency to look at"
            )
        return text + f"; {len(self.anomalies)} anomal{'y' if len(self.anomalies) == 1 else 'ies'} to own"

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "week": self.week,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "generated_at": self.generated_at.isoformat(),
            "headline": self.headline,
            "total": self.total.to_dict(),
            "by": {dim: [line.to_dict() for line in lines] for dim, lines in self.lines.items()},
            "anomalies": [a.to_dict() for a in self.anomalies],
            "top_movers": [m.to_dict() for m in self.movers],
            "cache_hit_target": dec(self.cache_target),
            "cost_per_outcome": [g.to_dict() for g in self.cases],
            "daily_spend_usd": [{"day": day, "spend_usd": dec(value)} for day, value in self.daily],
            "saving": {"ungoverned_usd": dec(self.ungoverned_usd), "saved_usd": dec(self.saved_usd)},
            "notes": self.notes,
        }
