"""Load a policy file (full or compact FinOps form), validate it, and compile it to `Policy`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from fiscus.attribution import DIMENSIONS
from fiscus.config import describe_validation_error, read_yaml
from fiscus.engine.decision import Action
from fiscus.errors import ConfigError
from fiscus.meters import Limits
from fiscus.money import to_nanos
from fiscus.policy.ladders import Ladders
from fiscus.policy.spec import (
    TARGET_DIMENSIONS,
    BudgetSpec,
    CrossRouteSpec,
    LimitsSpec,
    PolicySpec,
    ShorthandSpec,
    ThresholdSpec,
    parse_duration,
)
from fiscus.policy.types import (
    EACH,
    Budget,
    Policy,
    ResponseCacheRule,
    RunTarget,
    SummaryRule,
    Threshold,
    Window,
)

DEFAULT_THRESHOLDS: tuple[Threshold, ...] = (
    Threshold(Decimal("0.8"), Action.WARN),
    Threshold(Decimal("0.9"), Action.DOWNGRADE),
    Threshold(Decimal("0.9"), Action.COMPRESS, fraction=Decimal("0.5")),
    Threshold(Decimal("1.0"), Action.PARTIAL),
)
_MAX_BUCKETS = 24


def load_policy(path: str | Path) -> Policy:
    path = Path(path)
    return parse_policy(read_yaml(path), source=path)


def parse_policy(data: dict[str, Any], *, source: Path | str = "<policy>") -> Policy:
    """Validate a policy mapping; a `ConfigError` names the file, the field and what is wrong."""
    path = Path(source)
    if "budgets" not in data and any(str(k).startswith("budget_") for k in data):
        data = _expand_shorthand(data, path)
    try:
        spec = PolicySpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(path, exc)) from None
    return compile_policy(spec, source=str(source))


def compile_policy(spec: PolicySpec, *, source: str | None = None) -> Policy:
    where = source or "<policy>"
    try:
        zone = ZoneInfo(spec.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: timezone: unknown IANA time zone {spec.timezone!r}") from None
    ladders = Ladders.defaults().merged(
        {name: tuple(tuple(t) if isinstance(t, list) else (t,) for t in tiers) for name, tiers in spec.ladders.items()}
    )
    routes, cross_routes = _compile_routes(spec.routes, ladders, where)
    budgets: list[Budget] = []
    names: set[str] = set()
    for index, budget_spec in enumerate(spec.budgets):
        budget = _compile_budget(budget_spec, f"{where}: budgets.{index}")
        if budget.name in names:
            raise ConfigError(f"{where}: budgets.{index}.name: duplicate budget name {budget.name!r}")
        names.add(budget.name)
        budgets.append(budget)
    return Policy(
        budgets=tuple(budgets),
        timezone=zone,
        ladders=ladders,
        routes=routes,
        cross_routes=cross_routes,
        context=dict(spec.context),
        summaries={
            task_class: SummaryRule(rule.keep_last, rule.refresh_every, rule.max_tokens, rule.model)
            for task_class, rule in spec.summaries.items()
        },
        response_cache={
            task_class: ResponseCacheRule(parse_duration(rule.ttl), rule.max_entries, rule.any_temperature)
            for task_class, rule in spec.response_cache.items()
        },
        deferrable=frozenset(spec.deferrable),
        default_max_tokens=spec.default_max_tokens,
        min_output_tokens=spec.min_output_tokens,
        estimate_margin=spec.estimate_margin,
        reserve_for_critical=spec.priority.reserve_for_critical,
        session_ttl_seconds=parse_duration(spec.session_ttl),
        source=source,
        alerts=spec.alerts,
        owners={k: dict(v) for k, v in spec.owners.items() if isinstance(v, dict)},
        default_owner=spec.owners["default"] if isinstance(spec.owners.get("default"), str) else None,  # type: ignore[arg-type]
        targets={
            dim: {value: RunTarget(t.p50_usd, t.p95_usd) for value, t in getattr(spec.targets, dim).items()}
            for dim in TARGET_DIMENSIONS
            if getattr(spec.targets, dim)
        },
        cache_hit_target=spec.targets.cache_hit_rate,
        version=policy_version(spec),
    )


def policy_version(spec: PolicySpec) -> str:
    """A short hash of the validated policy: the same rules give the same version whatever the file's layout,
    comments or key order; any change of a rule gives a new one. Recorded with every call and policy event."""
    canonical = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _compile_routes(
    routes: dict[str, list[str | CrossRouteSpec]], ladders: Ladders, where: str
) -> tuple[dict[str, tuple[str, ...]], dict[str, dict[str, str]]]:
    """Each routed model must stand on a ladder (that is how a call's model is matched to it), one per ladder;
    a route out of a family names the ladder it takes calls from and a model on another ladder."""
    compiled: dict[str, tuple[str, ...]] = {}
    across: dict[str, dict[str, str]] = {}
    known = dict(ladders.ladders)
    for task_class, entries in routes.items():
        seen: dict[str, str] = {}
        models: list[str] = []
        for entry in entries:
            if isinstance(entry, CrossRouteSpec):
                out = across.setdefault(task_class, {})
                here = f"{where}: routes.{task_class}: {{from: {entry.from_}, to: {entry.to}}}"
                if entry.from_ not in known:
                    raise ConfigError(f"{here}: no ladder is named {entry.from_!r}; ladders: {', '.join(known)}")
                target = ladders.tier_of(entry.to)
                if target is None:
                    raise ConfigError(f"{here}: model {entry.to!r} is on no ladder; add it to `ladders`")
                if target.ladder == entry.from_:
                    raise ConfigError(f"{here}: {entry.to!r} is on that same ladder; list it as a plain route")
                if entry.from_ in out:
                    raise ConfigError(f"{here}: calls from {entry.from_!r} are already routed to {out[entry.from_]!r}")
                out[entry.from_] = entry.to
                continue
            model = entry
            tier = ladders.tier_of(model)
            if tier is None:
                raise ConfigError(
                    f"{where}: routes.{task_class}: model {model!r} is on no ladder; add it to `ladders` so fiscus "
                    "knows which calls it can take"
                )
            if tier.ladder in seen:
                raise ConfigError(
                    f"{where}: routes.{task_class}: {seen[tier.ladder]!r} and {model!r} are on the same ladder "
                    f"({tier.ladder}); route each task class to one model per ladder"
                )
            seen[tier.ladder] = model
            models.append(model)
        if models:
            compiled[task_class] = tuple(models)
    return compiled, across


def _compile_budget(spec: BudgetSpec, where: str) -> Budget:
    scope = tuple(
        (dim, EACH if value == EACH else frozenset(value) if isinstance(value, list) else value)
        for dim in DIMENSIONS
        if (value := spec.scope.get(dim)) is not None
    )
    window = _compile_window(spec.window, f"{where}.window")
    thresholds = (
        tuple(sorted((_compile_threshold(t) for t in spec.thresholds), key=lambda t: (t.at, t.action.severity)))
        if spec.thresholds
        else DEFAULT_THRESHOLDS
    )
    factor = max(Decimal(1), *(t.at for t in thresholds))
    top = thresholds[-1]
    exhausted = (
        Action(spec.on_exhausted)
        if spec.on_exhausted
        else (top.action if top.action in (Action.PARTIAL, Action.BLOCK) else Action.PARTIAL)
    )
    if spec.on_exhausted:
        # An exhausted budget gives one answer: a refusing threshold at or past the limit (the default partial at
        # 1.0) takes `on_exhausted`'s action, or a call would get a partial when the counters read 100 % and a
        # block when they read just below — which one depending on what other workers held at that instant.
        thresholds = tuple(
            replace(t, action=exhausted, override=t.override and exhausted is Action.BLOCK)
            if t.at >= 1 and t.action in (Action.PARTIAL, Action.BLOCK)
            else t
            for t in thresholds
        )
    nominal = _limits(spec.limit, Decimal(1))
    name = spec.name or _auto_name(scope, window)
    return Budget(
        name=name,
        scope=scope,
        window=window,
        limits=nominal,
        cap=_limits(spec.limit, factor),
        thresholds=thresholds,
        exhausted=exhausted,
        exhausted_override=spec.override or (top.action is Action.BLOCK and top.override),
        description=spec.description,
    )


def _compile_window(spec: str | dict[str, Any], where: str) -> Window:
    if isinstance(spec, dict):
        seconds = parse_duration(spec["rolling"])
        buckets = spec.get("buckets") or next(n for n in range(_MAX_BUCKETS, 0, -1) if seconds % n == 0)
        if seconds % buckets:
            raise ConfigError(f"{where}.buckets: {buckets} does not divide {spec['rolling']} into whole seconds")
        return Window("rolling", seconds=seconds, buckets=buckets)
    if spec in ("session", "never"):
        return Window(spec)
    return Window("calendar", unit=spec)


def _compile_threshold(spec: ThresholdSpec) -> Threshold:
    return Threshold(
        at=spec.at,
        action=Action(spec.action),
        channel=spec.channel,
        to_tokens=spec.to_tokens,
        fraction=spec.fraction,
        per_minute=spec.per_minute,
        override=spec.override,
        message=spec.message,
    )


def _limits(spec: LimitsSpec, factor: Decimal) -> Limits:
    return Limits(
        nanos=to_nanos(spec.usd * factor) if spec.usd is not None else None,
        tokens=int(spec.tokens * factor) if spec.tokens is not None else None,
        requests=int(spec.requests * factor) if spec.requests is not None else None,
    )


def _auto_name(scope: tuple[tuple[str, str | frozenset[str]], ...], window: Window) -> str:
    parts = [f"{dim}={'+'.join(sorted(v)) if isinstance(v, frozenset) else v}" for dim, v in scope]
    return "/".join([*(parts or ["all"]), window.label.replace(" ", "-")])


def _expand_shorthand(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """The compact FinOps form → the full form. Thresholds above 1.0 keep their meaning: the hard limit sits
    at the highest threshold and utilisation is still reported against the nominal budget."""
    try:
        short = ShorthandSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(path, exc)) from None
    window, usd = next(
        (w, v)
        for w, v in (
            ("hour", short.budget_hourly_usd),
            ("day", short.budget_daily_usd),
            ("week", short.budget_weekly_usd),
            ("month", short.budget_monthly_usd),
        )
        if v is not None
    )
    scope = {
        dim: value
        for dim in ("organization", "team", "agent", "workflow", "tenant", "user", "environment", "api_key")
        if (value := getattr(short, dim)) is not None
    }
    thresholds = [_shorthand_threshold(alert.threshold, alert.action) for alert in short.alerts]
    budget: dict[str, Any] = {"scope": scope, "window": window, "limit": {"usd": usd}}
    if thresholds:
        budget["thresholds"] = thresholds
    return {"timezone": short.timezone, "budgets": [budget]}


def _shorthand_threshold(at: Decimal, action: str) -> dict[str, Any]:
    if action.startswith("notify_"):
        return {"at": at, "action": "notify", "channel": action.removeprefix("notify_")}
    if action.startswith("throttle_to_"):
        percent = int(action.split("_")[2])
        return {"at": at, "action": "throttle", "fraction": Decimal(percent) / 100}
    if action == "hard_stop":
        return {"at": at, "action": "block", "override": True}
    if action == "soft_stop":
        return {"at": at, "action": "partial"}
    return {"at": at, "action": action}
