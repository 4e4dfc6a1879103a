"""The policy file as written: pydantic models that validate it field by field (see `load.py`)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fiscus.attribution import DIMENSIONS
from fiscus.policy.alerts import AlertSettings

ACTIONS = ("notify", "warn", "downgrade", "compress", "throttle", "partial", "block")
CALENDAR_UNITS = ("hour", "day", "week", "month")
WINDOWS = ("session", *CALENDAR_UNITS, "never")
SCOPE_DIMENSIONS = tuple(d for d in DIMENSIONS if d not in ("parent_session", "outcome"))
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int:
    """ "5h" → 18000 seconds. Units: s, m, h, d, w."""
    match = _DURATION.match(str(text))
    if match is None or int(match.group(1)) <= 0:
        raise ValueError(f"expected a duration like 30m, 5h or 7d, got {text!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LimitsSpec(_Strict):
    usd: Decimal | None = Field(default=None, gt=0)
    tokens: int | None = Field(default=None, gt=0)
    requests: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_meter(self) -> LimitsSpec:
        if self.usd is None and self.tokens is None and self.requests is None:
            raise ValueError("give at least one of usd, tokens, requests")
        return self


class ThresholdSpec(_Strict):
    at: Decimal = Field(gt=0, le=10, description="share of the nominal limit, e.g. 0.8")
    action: Literal["notify", "warn", "downgrade", "compress", "throttle", "partial", "block"]
    channel: str | None = None
    to_tokens: int | None = Field(default=None, gt=0)
    fraction: Decimal | None = Field(default=None, gt=0, le=1)
    per_minute: int | None = Field(default=None, gt=0)
    override: bool = False
    message: str | None = None

    @model_validator(mode="after")
    def _parameters_fit_action(self) -> ThresholdSpec:
        action = self.action
        if action == "notify" and not self.channel:
            raise ValueError("a notify threshold needs a channel")
        if self.channel and action != "notify":
            raise ValueError(f"channel belongs to notify, not {action}")
        if action == "compress" and self.to_tokens is None and self.fraction is None:
            raise ValueError("a compress threshold needs to_tokens or fraction")
        if action == "throttle" and self.fraction is None and self.per_minute is None:
            raise ValueError("a throttle threshold needs fraction (share admitted) or per_minute")
        if self.to_tokens is not None and action != "compress":
            raise ValueError(f"to_tokens belongs to compress, not {action}")
        if self.fraction is not None and action not in ("compress", "throttle"):
            raise ValueError(f"fraction belongs to compress or throttle, not {action}")
        if self.per_minute is not None and action != "throttle":
            raise ValueError(f"per_minute belongs to throttle, not {action}")
        if self.override and action != "block":
            raise ValueError(f"override belongs to block, not {action}")
        return self


class BudgetSpec(_Strict):
    name: str | None = Field(default=None, min_length=1, pattern=r"^[A-Za-z0-9_.:/@+=-]+$")
    description: str | None = None
    scope: dict[str, str | list[str]] = Field(default_factory=dict)
    window: str | dict[str, Any] = "month"  # session | hour | day | week | month | never | {rolling: 5h}
    limit: LimitsSpec
    thresholds: list[ThresholdSpec] | None = None
    on_exhausted: Literal["partial", "block"] | None = None
    override: bool = False  # whether a granted override passes the refusal when the budget is exhausted

    @field_validator("window")
    @classmethod
    def _window(cls, value: str | dict[str, Any]) -> str | dict[str, Any]:
        if isinstance(value, str):
            if value not in WINDOWS:
                raise ValueError(f"unknown window {value!r}; use {', '.join(WINDOWS)} or {{rolling: 5h}}")
            return value
        unknown = set(value) - {"rolling", "buckets"}
        if unknown or "rolling" not in value:
            raise ValueError("a rolling window is written {rolling: <duration>} with optional buckets: <count>")
        parse_duration(value["rolling"])
        buckets = value.get("buckets")
        if buckets is not None and (not isinstance(buckets, int) or not 1 <= buckets <= 1440):
            raise ValueError("buckets must be a whole number from 1 to 1440")
        return value

    @field_validator("scope")
    @classmethod
    def _known_dimensions(cls, scope: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        for dim, value in scope.items():
            if dim not in SCOPE_DIMENSIONS:
                raise ValueError(f"unknown scope dimension {dim!r}; known: {', '.join(SCOPE_DIMENSIONS)}")
            values = value if isinstance(value, list) else [value]
            if not values or any(not v for v in values):
                raise ValueError(f"scope {dim}: empty value")
            if isinstance(value, list) and "*" in value:
                raise ValueError(f"scope {dim}: '*' (each value) cannot be mixed with a list")
        return scope


class PrioritySpec(_Strict):
    reserve_for_critical: Decimal = Field(default=Decimal(0), ge=0, lt=1)


class RunTargetSpec(_Strict):
    """What one case (session) of a group should cost: P50 the operating target, P95 the ceiling."""

    p50_usd: Decimal = Field(ge=0)
    p95_usd: Decimal = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> RunTargetSpec:
        if self.p95_usd < self.p50_usd:
            raise ValueError("p95_usd must not be below p50_usd")
        return self


TARGET_DIMENSIONS = ("team", "workflow", "agent", "task_class")


class TargetsSpec(_Strict):
    """Targets the weekly review reads (else it derives P50 / P95 from the weeks before)."""

    cache_hit_rate: Decimal = Field(default=Decimal("0.7"), ge=0, le=1)
    team: dict[str, RunTargetSpec] = Field(default_factory=dict)
    workflow: dict[str, RunTargetSpec] = Field(default_factory=dict)
    agent: dict[str, RunTargetSpec] = Field(default_factory=dict)
    task_class: dict[str, RunTargetSpec] = Field(default_factory=dict)


class SummarySpec(_Strict):
    """Rolling summarisation for one task class: turns older than the newest `keep_last` groups are replaced by
    a summary the family's cheapest model writes (or `model`), refreshed each time `refresh_every` more groups
    have aged out (between refreshes the summary, and so the cached prompt prefix, stays the same)."""

    keep_last: int = Field(default=4, ge=1)
    refresh_every: int = Field(default=2, ge=1)
    max_tokens: int = Field(default=600, ge=32)
    model: str | None = None


class ResponseCacheSpec(_Strict):
    """An exact response cache for one task class: a deterministic request (temperature 0, or any when
    `any_temperature`) asked again within `ttl` is answered from the cache, at no cost."""

    ttl: str = "1h"
    max_entries: int = Field(default=10_000, ge=1, le=10_000_000)
    any_temperature: bool = False

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, value: str) -> str:
        parse_duration(value)
        return value


class CrossRouteSpec(_Strict):
    """A route out of a model family: calls asked of a model on ladder `from` run on `to`, a model of another
    family, translated between the wire formats by the gateway (OpenAI Chat Completions ↔ Anthropic Messages)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: str = Field(alias="from")
    to: str


class PolicySpec(_Strict):
    version: Literal[1] = 1
    timezone: str = "UTC"
    default_max_tokens: int = Field(default=4096, gt=0)
    min_output_tokens: int = Field(default=64, gt=0)
    # how much more input than the (calibrated) count a reservation covers; the hard bound caps it
    estimate_margin: Decimal = Field(default=Decimal("0.2"), ge=0, le=4)
    session_ttl: str = "7d"
    priority: PrioritySpec = Field(default_factory=PrioritySpec)
    ladders: dict[str, list[str | list[str]]] = Field(default_factory=dict)
    # task class → the models its calls run on, at most one per ladder (a call moves within its model's ladder)
    # ({from: gpt-4o, to: claude-haiku-4-5}: out of a family, through the gateway's translation)
    routes: dict[str, list[str | CrossRouteSpec]] = Field(default_factory=dict)
    # task class → the most input tokens its calls send: a longer context is trimmed first (system prompt and
    # latest turns kept, large tool results shortened)
    context: dict[str, int] = Field(default_factory=dict)
    # task class → rolling summarisation of its older turns (opt-in)
    summaries: dict[str, SummarySpec] = Field(default_factory=dict)
    # task class → exact response cache for its deterministic requests (opt-in)
    response_cache: dict[str, ResponseCacheSpec] = Field(default_factory=dict)
    # task classes whose work can wait for the providers' Batch APIs (half price, answers within 24 h): their
    # batches are admitted at background priority, so they never take the room kept for critical calls
    deferrable: list[str] = Field(default_factory=list)
    override_keys_env: str | None = None  # removed: overrides are granted (`fiscus overrides grant`), see below
    budgets: list[BudgetSpec] = Field(default_factory=list)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    # who answers for an anomaly: `default`, or per dimension value (`workflow: {triage: alice@example.com}`)
    owners: dict[str, str | dict[str, str]] = Field(default_factory=dict)
    targets: TargetsSpec = Field(default_factory=TargetsSpec)

    @field_validator("owners")
    @classmethod
    def _owners(cls, owners: dict[str, str | dict[str, str]]) -> dict[str, str | dict[str, str]]:
        for key, value in owners.items():
            if key == "default":
                if not isinstance(value, str) or not value.strip():
                    raise ValueError("owners.default must be a name")
                continue
            if key not in SCOPE_DIMENSIONS:
                raise ValueError(
                    f"owners: unknown dimension {key!r}; use default or one of {', '.join(SCOPE_DIMENSIONS)}"
                )
            if not isinstance(value, dict):
                raise ValueError(f"owners.{key} maps each {key} to its owner, e.g. {{triage: alice@example.com}}")
        return owners

    @field_validator("override_keys_env")
    @classmethod
    def _no_static_override_keys(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError(
                "static override keys were removed: grant an override per key or budget, with an expiry and a "
                "reason, with `fiscus overrides grant` (or POST /admin/overrides)"
            )
        return value

    @field_validator("session_ttl")
    @classmethod
    def _ttl(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("context")
    @classmethod
    def _context(cls, context: dict[str, int]) -> dict[str, int]:
        for task_class, tokens in context.items():
            if tokens < 256:
                raise ValueError(f"context window of {task_class!r} must be at least 256 tokens, got {tokens}")
        return context

    @field_validator("ladders")
    @classmethod
    def _ladders(cls, ladders: dict[str, list[str | list[str]]]) -> dict[str, list[str | list[str]]]:
        for name, tiers in ladders.items():
            if len(tiers) < 2:
                raise ValueError(f"ladder {name!r} needs at least two tiers")
            if any(isinstance(t, list) and not t for t in tiers):
                raise ValueError(f"ladder {name!r} has an empty tier")
        return ladders


# --- the compact FinOps form: one agent (or team…), one monthly USD budget, a list of alerts -------------------

_SHORTHAND_ACTION = re.compile(r"^(notify_\w+|throttle_to_\d{1,3}_percent|hard_stop|soft_stop|warn|downgrade|block)$")


class AlertSpec(_Strict):
    threshold: Decimal = Field(gt=0, le=10)
    action: str

    @field_validator("action")
    @classmethod
    def _known(cls, action: str) -> str:
        if not _SHORTHAND_ACTION.match(action):
            raise ValueError(
                f"unknown alert action {action!r}; use notify_<channel>, throttle_to_<N>_percent, hard_stop, "
                "soft_stop, warn, downgrade or block"
            )
        if action.startswith("throttle_to_") and not 0 < int(action.split("_")[2]) <= 100:
            raise ValueError(f"{action}: the percentage must be 1..100")
        return action


class ShorthandSpec(_Strict):
    """`agent: x`, `budget_monthly_usd: 25000`, `alerts: [{threshold, action}]` (any one scope dimension)."""

    organization: str | None = None
    team: str | None = None
    agent: str | None = None
    workflow: str | None = None
    tenant: str | None = None
    user: str | None = None
    environment: str | None = None
    api_key: str | None = None
    budget_hourly_usd: Decimal | None = Field(default=None, gt=0)
    budget_daily_usd: Decimal | None = Field(default=None, gt=0)
    budget_weekly_usd: Decimal | None = Field(default=None, gt=0)
    budget_monthly_usd: Decimal | None = Field(default=None, gt=0)
    alerts: list[AlertSpec] = Field(default_factory=list)
    timezone: str = "UTC"

    @model_validator(mode="after")
    def _one_budget(self) -> ShorthandSpec:
        given = [w for w in ("hourly", "daily", "weekly", "monthly") if getattr(self, f"budget_{w}_usd") is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of budget_hourly_usd, budget_daily_usd, budget_weekly_usd, budget_monthly_usd"
            )
        return self
