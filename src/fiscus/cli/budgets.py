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
from fiscus.money import from_nanos
from fiscus.policy import Policy, Threshold, load_policy
from fiscus.pricing import usd
from fiscus.stores.base import Limits

if TYPE_CHECKING:
    from fiscus.governor.status import Pace

budgets_app = typer.Typer(help="Budgets: check a policy file, show spend against each budget.", no_args_is_help=True)


@budgets_app.command("check")
def check(
    policy: Annotated[Path, typer.Option("--policy", help="The policy file to validate.")],
) -> None:
    """Validate a policy file and list its budgets: scope, window, limits, thresholds and actions."""
    loaded = load_policy(policy)
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
            str(budget.exhausted) + (" (override key passes)" if budget.exhausted_override else ""),
        )
    console = _console()
    console.print(table)
    for task_class, models in loaded.routes.items():
        console.print(f"route: task class {task_class} runs on {', '.join(models)} (one per model family)")


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
        table.add_column(
            column,
            justify="right" if column in ("spent", "reserved", "used") else "left",
            no_wrap=column in ("budget", "window", "used", "pace", "resets (UTC)", "threshold"),
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
    console = _console()
    console.print(table)
    for row in rows:
        if row.pace is not None and row.pace.exhausts_at is not None:
            instance = " ".join(f"{d}={v}" for d, v in row.values)
            name = f"{row.budget} ({instance})" if instance else row.budget
            when = row.pace.exhausts_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
            console.print(f"{name}: at this pace its limit falls {when} UTC, before the reset")
    if not breakers:
        console.print(f"circuit breakers: none has tripped ({state.url})")
        return
    console.print(_breaker_table(breakers, state.url))


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
        "block": " (override key passes)" if t.override else "",
    }.get(str(t.action), "")
    return f"{t.at} → {t.action}{detail}"


def register(app: typer.Typer) -> None:
    app.add_typer(budgets_app, name="budgets")


__all__ = ["register"]
