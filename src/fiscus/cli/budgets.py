"""`fiscus budgets`: check a policy file; show where each budget stands."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from fiscus.errors import ConfigError
from fiscus.meters import Limits
from fiscus.money import from_nanos
from fiscus.policy import Policy, Threshold, load_policy
from fiscus.pricing import usd

if TYPE_CHECKING:
    from fiscus.engine.decision import BudgetReason
    from fiscus.governor.status import Pace

budgets_app = typer.Typer(
    help="Budgets: check a policy file, show spend against each budget, ask whether a task fits.", no_args_is_help=True
)


@budgets_app.command("check")
def check(
    policy: Annotated[Path, typer.Option("--policy", help="The policy file to validate.")],
    config: Annotated[
        Path | None,
        typer.Option("--config", help="fiscus.yaml the policy runs with: its notify channels must exist."),
    ] = None,
) -> None:
    """Validate a policy file and list its budgets: scope, window, limits, thresholds and actions. Every notify
    channel the policy names must be configured in --config (without it, the built-in config has none)."""
    from fiscus.config import load_config
    from fiscus.notify.channels import check_channels

    loaded = load_policy(policy)
    cfg = load_config(config)
    check_channels(loaded, cfg.notify, config=config)
    table = Table(title=f"{policy} — {len(loaded.budgets)} budget(s), time zone {loaded.timezone}")
    for column in ("budget", "scope", "window", "limit", "thresholds → actions", "when exhausted"):
        table.add_column(column, overflow="fold", no_wrap=column in ("budget", "scope", "window"))
    for budget in loaded.budgets:
        table.add_row(
            budget.name,
            budget.scope_label(),
            budget.window.label,
            _limits(budget.limits) + (f"\n(hard stop {_limits(budget.cap)})" if budget.cap != budget.limits else ""),
            "\n".join(_threshold(t) for t in budget.thresholds),
            str(budget.exhausted) + (" (overridable)" if budget.exhausted_override else ""),
        )
    console = _console()
    console.print(table)
    for task_class, models in loaded.routes.items():
        console.print(f"route: task class {task_class} runs on {', '.join(models)} (one per model family)")
    for task_class, tokens in loaded.context.items():
        console.print(f"context window: task class {task_class} sends at most {tokens:,} input tokens")


@budgets_app.command("status")
def status(
    store: Annotated[
        str | None, typer.Option("--store", help="Budget store URL (memory://, sqlite:///…, redis://…).")
    ] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="Policy file (default: the config's).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="fiscus.yaml naming the store and policy.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Per budget instance: limit, spent, reserved, utilisation, where the pace so far leads by the reset (calendar
    windows), the window's reset and the threshold reached; below them every circuit breaker that has tripped:
    state, since, reason and the end of its cooldown.

    Per-value budgets (e.g. one per user) list the instances the store holds counters for, where the store can
    list its keys. Breakers are read from the config's `guards.state` (default: beside the budget store).
    `--json` prints {"budgets": [...], "breakers": [...]}."""
    from fiscus.config import load_config
    from fiscus.governor import Governor
    from fiscus.guards.state import describe, open_breaker_state
    from fiscus.pricing import PriceCatalogue
    from fiscus.stores import open_store  # type: ignore[attr-defined]

    cfg = load_config(config)
    policy_path = policy or cfg.policy
    if policy_path is None:
        raise ConfigError("no policy: pass --policy FILE or set `policy:` in fiscus.yaml")
    loaded: Policy = load_policy(policy_path)
    governor = Governor(
        policy=loaded, store=open_store(store or cfg.budget_store), catalogue=PriceCatalogue(cfg.pricing)
    )
    try:
        rows = governor.status()
    finally:
        governor.close()
    state = open_breaker_state(cfg.guards.state_url(store or cfg.budget_store))
    try:
        breakers = describe(state.load_all(), now=time.time())
    finally:
        state.close()
    if as_json:
        print(json.dumps({"budgets": [row.to_dict() for row in rows], "breakers": breakers}, indent=2))
        return
    table = Table(title=f"budgets of {policy_path}")
    columns = ("budget", "instance", "window", "limit", "spent", "reserved", "used", "pace", "resets (UTC)")
    for column in (*columns, "threshold"):
        # On a narrow terminal long cells wrap (fold) rather than end in "…": a row read in part misleads.
        table.add_column(
            column, justify="right" if column in ("spent", "reserved", "used") else "left", overflow="fold"
        )
    for row in rows:
        table.add_row(
            row.budget,
            " ".join(f"{d}={v}" for d, v in row.values) or "-",
            row.window,
            _limits(row.limits),
            _amounts(row.spent.nanos, row.spent.tokens, row.spent.requests, row.limits),
            _amounts(row.reserved.nanos, row.reserved.tokens, row.reserved.requests, row.limits),
            f"{(row.utilisation * 100).quantize(Decimal('0.1'))}% ({row.meter})",
            _pace(row.pace),
            row.resets_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if row.resets_at else "never",
            f"{row.threshold} → {row.action}" if row.threshold is not None else "-",
        )
    breaker_table = _breaker_table(breakers, state.url) if breakers else None
    console = _whole_console(table, *([breaker_table] if breaker_table is not None else []))
    console.print(table)
    for row in rows:
        if row.pace is not None and row.pace.exhausts_at is not None:
            instance = " ".join(f"{d}={v}" for d, v in row.values)
            name = f"{row.budget} ({instance})" if instance else row.budget
            when = row.pace.exhausts_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
            console.print(f"{name}: at this pace its limit falls {when} UTC, before the reset")
    if breaker_table is None:
        console.print(f"circuit breakers: none has tripped ({state.url})")
        return
    console.print(breaker_table)


@budgets_app.command("preflight")
def preflight(
    provider: Annotated[str, typer.Option("--provider", help="Provider of the model, e.g. anthropic.")],
    model: Annotated[str, typer.Option("--model", help="The model the task's calls ask for.")],
    calls: Annotated[int, typer.Option("--calls", min=1, help="Calls in the task.")] = 1,
    input_tokens: Annotated[
        int, typer.Option("--input-tokens", min=0, help="Input tokens per call, as counted from the request.")
    ] = 0,
    input_bytes: Annotated[
        int | None,
        typer.Option(
            "--input-bytes", min=0, help="UTF-8 bytes of each call's input: its hard bound (default: the estimate)."
        ),
    ] = None,
    cache_write_tokens: Annotated[
        int,
        typer.Option("--cache-write-tokens", min=0, help="Input tokens up to the last cache breakpoint (Anthropic)."),
    ] = 0,
    cache_ttl: Annotated[str, typer.Option("--cache-ttl", help="TTL those breakpoints ask for: 5m or 1h.")] = "5m",
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", min=1, help="Output cap per call (default: the policy's).")
    ] = None,
    agent: Annotated[str | None, typer.Option("--agent")] = None,
    team: Annotated[str | None, typer.Option("--team")] = None,
    workflow: Annotated[str | None, typer.Option("--workflow")] = None,
    task_class: Annotated[str | None, typer.Option("--task-class")] = None,
    environment: Annotated[str | None, typer.Option("--env", help="Environment, e.g. prod.")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant")] = None,
    user: Annotated[str | None, typer.Option("--user")] = None,
    organization: Annotated[str | None, typer.Option("--org")] = None,
    priority: Annotated[str, typer.Option("--priority", help="critical, normal or background.")] = "normal",
    store: Annotated[str | None, typer.Option("--store", help="Budget store URL (default: the config's).")] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="Policy file (default: the config's).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="fiscus.yaml naming the store and policy.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
) -> None:
    """Would a task of --calls calls fit the budgets now? Decides as a call would — every applicable budget, the
    model after routing or a downgrade, the worst case — without reserving anything. Exit code 0: it fits (the
    answer may still warn or downgrade); 1: it does not, and the answer says when it may (the window's reset)."""
    from fiscus.attribution import Attribution
    from fiscus.config import load_config
    from fiscus.engine.request import PRIORITIES
    from fiscus.governor import CallRequest, Governor
    from fiscus.pricing import PriceCatalogue
    from fiscus.stores import open_store  # type: ignore[attr-defined]

    if priority not in PRIORITIES:
        raise ConfigError(f"--priority {priority!r}: use {', '.join(PRIORITIES)}")
    if cache_ttl not in ("5m", "1h"):
        raise ConfigError(f"--cache-ttl {cache_ttl!r}: use 5m or 1h")
    cfg = load_config(config)
    policy_path = policy or cfg.policy
    if policy_path is None:
        raise ConfigError("no policy: pass --policy FILE or set `policy:` in fiscus.yaml")
    governor = Governor(
        policy=load_policy(policy_path),
        store=open_store(store or cfg.budget_store),
        catalogue=PriceCatalogue(cfg.pricing),
    )
    attribution = Attribution(
        organization=organization,
        team=team,
        agent=agent,
        workflow=workflow,
        task_class=task_class,
        environment=environment,
        tenant=tenant,
        user=user,
    )
    # Described as a door describes a request: the counted input, its hard bound, the prefix marked for the cache.
    request = CallRequest(
        provider,
        model,
        attribution,
        input_tokens=input_tokens,
        max_tokens=max_tokens,
        priority=priority,
        calls=calls,
        input_bound=input_bytes,
        cache_writes=cache_write_tokens > 0,
        cache_write_tokens=min(cache_write_tokens, input_tokens),
        cache_write_1h_tokens=min(cache_write_tokens, input_tokens) if cache_ttl == "1h" else 0,
    )
    try:
        decision = governor.preflight(request)
        fits = decision.calls_model
        ever = fits or governor.preflight(request, fresh=True).calls_model
    finally:
        governor.close()
    reserved = from_nanos(decision.reserve.nanos) if decision.reserve is not None else None
    held = decision.hold if decision.hold is not None else decision.reserve
    worst = from_nanos(held.nanos) if held is not None else None
    plan = governor.engine.plan(request, governor.now())
    estimate, bound = plan.estimate_case().tokens, plan.hard_case().tokens
    if as_json:
        print(
            json.dumps(
                {
                    "fits": fits,
                    "action": str(decision.action),
                    "model": decision.model,
                    "requested_model": decision.requested_model,
                    "max_tokens": decision.max_tokens,
                    "reserve_usd": format(reserved, "f") if reserved is not None else None,
                    "worst_case_usd": format(worst, "f") if worst is not None else None,
                    "input_estimate_tokens": estimate,
                    "input_bound_tokens": bound,
                    "estimate_margin": format(governor.policy.estimate_margin, "f"),
                    "message": decision.message,
                    "retry_at": decision.retry_at.isoformat() if decision.retry_at and ever else None,
                    "fits_a_fresh_window": ever,
                    "budgets": [_reason_dict(r) for r in decision.reasons],
                },
                indent=2,
            )
        )
        raise typer.Exit(0 if fits else 1)
    task = f"A task of {calls} call{'s' if calls > 1 else ''} on {provider}/{model}"
    console = _console()
    if fits:
        served = f" on {decision.model}" if decision.model != model else ""
        cap = f"{decision.max_tokens} output tokens a call"
        if max_tokens is not None and decision.max_tokens < max_tokens:
            cap = f"{cap}, not the {max_tokens} asked: what is left allows no more"
        reserve, hold = usd(reserved or Decimal(0)), usd(worst or Decimal(0))
        console.print(
            f"{task} fits{served} ({decision.action}); reserves {reserve}, worst case {hold}, capped at {cap}."
        )
        margin = (governor.policy.estimate_margin * 100).normalize()
        console.print(
            f"Input per call: {estimate} tokens reserved ({input_tokens} counted + {margin:f} %), at most {bound}."
        )
    else:
        console.print(f"{task} does not fit: {decision.message or decision.action}.")
        if not ever:
            console.print("It cannot fit even in a fresh window: make the task smaller or the limit larger.")
        elif decision.retry_at is not None:
            console.print(
                f"It may fit from {decision.retry_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC, when the window resets."
            )
    if decision.reasons:
        table = Table(title="budgets that apply")
        for column in ("budget", "used", "threshold", "resets (UTC)"):
            table.add_column(column, no_wrap=True)
        for r in decision.reasons:
            table.add_row(
                r.budget,
                f"{(r.utilisation * 100).quantize(Decimal('0.1'))}% ({r.meter})",
                f"{r.threshold} → {r.action}" if r.threshold is not None else "-",
                r.resets_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if r.resets_at else "never",
            )
        console.print(table)
    else:
        console.print("No budget applies to this attribution.")
    raise typer.Exit(0 if fits else 1)


def _reason_dict(reason: BudgetReason) -> dict[str, object]:
    return {
        "budget": reason.budget,
        "utilisation": format(reason.utilisation.quantize(Decimal("0.0001")), "f"),
        "meter": reason.meter,
        "threshold": format(reason.threshold, "f") if reason.threshold is not None else None,
        "action": str(reason.action),
        "resets_at": reason.resets_at.isoformat() if reason.resets_at else None,
    }


def _breaker_table(breakers: list[dict[str, object]], where: str) -> Table:
    table = Table(title=f"circuit breakers ({where})")
    for column in ("breaker", "state", "since (UTC)", "reason", "cooldown ends (UTC)", "trips"):
        table.add_column(column, overflow="fold", no_wrap=column != "reason")
    for row in breakers:
        reason = f"{row['reason']}: {row['message']}" if row["state"] != "closed" and row["reason"] else "-"
        ends = row["reopens_at"] if row["state"] == "open" else None
        table.add_row(str(row["scope"]), str(row["state"]), _utc(row["since"]), reason, _utc(ends), str(row["trips"]))
    return table


def _pace(pace: Pace | None) -> str:
    """The share of the limit the pace so far reaches by the reset."""
    return "-" if pace is None else f"{(pace.projected * 100).quantize(Decimal('1'))}%"


def _utc(epoch: object) -> str:
    if not isinstance(epoch, int | float):
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _console() -> Console:
    """A terminal gets its own width; piped or captured output gets 120 columns, so tables stay whole."""
    return Console() if sys.stdout.isatty() else Console(width=120)


def _whole_console(*tables: Table) -> Console:
    """A terminal gets its own width (long cells wrap); piped or captured output gets as many columns as the
    widest table needs, at least 120, so a script or a file gets every row whole on one line."""
    if sys.stdout.isatty():
        return Console()
    probe = Console(width=_UNBOUNDED)
    return Console(width=max(120, *(probe.measure(table).maximum for table in tables)))


_UNBOUNDED = 10_000  # wide enough for any table's natural width


def _limits(limits: Limits) -> str:
    parts = []
    if limits.nanos is not None:
        parts.append(usd(from_nanos(limits.nanos)))
    if limits.tokens is not None:
        parts.append(f"{limits.tokens:,} tokens")
    if limits.requests is not None:
        parts.append(f"{limits.requests:,} requests")
    return ", ".join(parts)


def _amounts(nanos: int, tokens: int, requests: int, limits: Limits) -> str:
    parts = [usd(from_nanos(nanos))]
    if limits.tokens is not None:
        parts.append(f"{tokens:,} tok")
    if limits.requests is not None:
        parts.append(f"{requests:,} req")
    return ", ".join(parts)


def _threshold(t: Threshold) -> str:
    detail = {
        "notify": f" {t.channel}",
        "compress": f" to {t.to_tokens} tokens" if t.to_tokens else f" to {t.fraction} of the context",
        "throttle": f" admit {t.fraction}" if t.fraction else f" {t.per_minute}/min",
        "block": " (overridable)" if t.override else "",
    }.get(str(t.action), "")
    return f"{t.at} → {t.action}{detail}"


def register(app: typer.Typer) -> None:
    app.add_typer(budgets_app, name="budgets")


__all__ = ["register"]


from fiscus.cli.budgets_rebuild import rebuild  # noqa: E402 - one more command of this group, kept in its own file

budgets_app.command("rebuild")(rebuild)
