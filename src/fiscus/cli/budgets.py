"""`fiscus budgets`: check a policy file; show where each budget stands."""

from __future__ import annotations

import json
import sys
from datetime import UTC
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fiscus.errors import ConfigError
from fiscus.money import from_nanos
from fiscus.policy import Policy, Threshold, load_policy
from fiscus.pricing import usd
from fiscus.stores.base import Limits

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
    _console().print(table)


@budgets_app.command("status")
def status(
    store: Annotated[
        str | None, typer.Option("--store", help="Budget store URL (memory://, sqlite:///…, redis://…).")
    ] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="Policy file (default: the config's).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="fiscus.yaml naming the store and policy.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Per budget instance: limit, spent, reserved, utilisation, the window's reset and the threshold reached.

    Per-value budgets (e.g. one per user) list the instances the store holds counters for, where the store can
    list its keys."""
    from fiscus.config import load_config
    from fiscus.governor import Governor
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
    if as_json:
        print(json.dumps([row.to_dict() for row in rows], indent=2))
        return
    table = Table(title=f"budgets of {policy_path}")
    for column in ("budget", "instance", "window", "limit", "spent", "reserved", "used", "resets (UTC)", "threshold"):
        table.add_column(
            column,
            justify="right" if column in ("spent", "reserved", "used") else "left",
            no_wrap=column in ("budget", "window", "used", "resets (UTC)", "threshold"),
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
            row.resets_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if row.resets_at else "never",
            f"{row.threshold} → {row.action}" if row.threshold is not None else "-",
        )
    _console().print(table)


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
