"""`alerts:` in the policy: the seeds' alert table, each signal with a warning and a critical level. On by
default with the seeds' numbers; a policy changes a level, a window, or turns a signal (or all) off.

| signal              | warning                  | critical  |
|---------------------|--------------------------|-----------|
| hourly_spend        | 2 × the baseline         | 5 ×       |
| cache_miss          | > 40 % where caching is expected | > 60 % |
| session_cost        | 5 × the task class's median session | 10 × |
| daily_budget_burn   | 70 % of a daily budget   | 90 %      |
| quota_utilisation   | 80 % of a period quota   | 95 %      |
| context_growth      | 1.5 × the mean input per call of the week before | 2 × |
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fiscus.attribution import DIMENSIONS

SIGNALS = ("hourly_spend", "cache_miss", "session_cost", "daily_budget_burn", "quota_utilisation", "context_growth")
_GROUPABLE = tuple(d for d in DIMENSIONS if d not in ("session", "parent_session", "outcome"))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Levels(_Strict):
    enabled: bool = True
    warning: Decimal = Field(gt=0)
    critical: Decimal = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Levels:
        if self.critical < self.warning:
            raise ValueError(f"critical ({self.critical}) must not be below warning ({self.warning})")
        return self


class HourlySpend(Levels):
    """This last hour's spend over the median hourly spend of the `baseline_days` before it (hours with spend)."""

    warning: Decimal = Field(default=Decimal(2), gt=0)
    critical: Decimal = Field(default=Decimal(5), gt=0)
    per: list[str] = Field(default_factory=lambda: ["workflow"])  # also per value of these (the total always)
    baseline_days: int = Field(default=7, ge=1, le=90)
    min_history_hours: int = Field(default=6, ge=1)


class CacheMiss(Levels):
    """Share of a workflow's input not read from cache over `window_minutes`, where caching is expected: the
    workflows listed in `expected`, and any that read from cache in the baseline days."""

    warning: Decimal = Field(default=Decimal("0.4"), gt=0, le=1)
    critical: Decimal = Field(default=Decimal("0.6"), gt=0, le=1)
    window_minutes: int = Field(default=60, ge=5)
    expected: list[str] = Field(default_factory=list)
    baseline_days: int = Field(default=7, ge=1, le=90)
    min_requests: int = Field(default=5, ge=1)


class SessionCost(Levels):
    """A session's cost over the median session cost of its task class in the baseline days (sessions active in
    the last hour are checked; once per session and level)."""

    warning: Decimal = Field(default=Decimal(5), gt=0)
    critical: Decimal = Field(default=Decimal(10), gt=0)
    baseline_days: int = Field(default=7, ge=1, le=90)
    min_sessions: int = Field(default=5, ge=2)


class DailyBudgetBurn(Levels):
    """Utilisation of each budget whose window is a day."""

    warning: Decimal = Field(default=Decimal("0.7"), gt=0)
    critical: Decimal = Field(default=Decimal("0.9"), gt=0)


class QuotaUtilisation(Levels):
    """Utilisation of every other period budget (hour, week, month, rolling, prepaid): the period's quota."""

    warning: Decimal = Field(default=Decimal("0.8"), gt=0)
    critical: Decimal = Field(default=Decimal("0.95"), gt=0)


class ContextGrowth(Levels):
    """A workflow's mean input tokens per call over the last day against the `baseline_days` before it."""

    warning: Decimal = Field(default=Decimal("1.5"), gt=0)
    critical: Decimal = Field(default=Decimal(2), gt=0)
    baseline_days: int = Field(default=7, ge=1, le=90)
    min_requests: int = Field(default=10, ge=1)


class AlertSettings(_Strict):
    enabled: bool = True
    # Notify channels (fiscus.yaml `notify.channels`) per level; none: the default channels.
    warning_channel: str | None = None
    critical_channel: str | None = None
    hourly_spend: HourlySpend = Field(default_factory=HourlySpend)
    cache_miss: CacheMiss = Field(default_factory=CacheMiss)
    session_cost: SessionCost = Field(default_factory=SessionCost)
    daily_budget_burn: DailyBudgetBurn = Field(default_factory=DailyBudgetBurn)
    quota_utilisation: QuotaUtilisation = Field(default_factory=QuotaUtilisation)
    context_growth: ContextGrowth = Field(default_factory=ContextGrowth)

    @model_validator(mode="after")
    def _per_dimensions(self) -> AlertSettings:
        for dim in self.hourly_spend.per:
            if dim not in _GROUPABLE:
                raise ValueError(f"hourly_spend.per: unknown dimension {dim!r}; known: {', '.join(_GROUPABLE)}")
        return self

    def signal(self, name: str) -> Levels:
        return getattr(self, name)  # type: ignore[no-any-return]

    def on(self, name: str) -> bool:
        return self.enabled and self.signal(name).enabled
