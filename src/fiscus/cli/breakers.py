"""`fiscus breakers list|reset NAME`: the circuit breakers every worker and process shares (`guards.state`,
beside the budget store by default), read and reset by an operator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from fiscus.errors import ConfigError

breakers_app = typer.Typer(help="Circuit breakers shared by every worker: list them, reset one.", no_args_is_help=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="fiscus.yaml naming the budget store and guards (default: built-in).")
]
StoreOption = Annotated[
    str | None,
    typer.Option("--state", help="Breaker state URL: sqlite:///path.db or redis://… (default: the config's)."),
]


def _registry(config: Path | None, state: str | None) -> Any:
    from fiscus.config import load_config

    cfg = load_config(config)
    guards = cfg.guards.model_copy(update={"state": state}) if state else cfg.guards
    if guards.state_url(cfg.budget_store).startswith("memory://"):
        raise ConfigError(
            "breakers live in each process with a memory:// store: set budget_store or guards.state to "
            "sqlite:/// or redis:// (or pass --state)"
        )
    return guards.breaker_registry(budget_store=cfg.budget_store)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    return str(value).replace("+00:00", "Z")


@breakers_app.command("list")
def list_breakers(
    config: ConfigOption = None,
    state: StoreOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """Every breaker any process has seen: state, why it opened, when it reopens, trips, and the account-wide
    figures (this hour's spend against the median hour and its level: warning at 2 ×, critical at 5 ×)."""
    from rich.console import Console
    from rich.table import Table

    from fiscus.cli.budgets import _whole_console
    from fiscus.guards.listing import breaker_rows

    registry = _registry(config, state)
    try:
        rows = breaker_rows(registry)
        where = registry.state.url if registry.state is not None else "-"
    finally:
        registry.close()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        Console().print(f"circuit breakers: none seen yet ({where})")
        return
    table = Table(title=f"circuit breakers ({where})")
    columns = ("breaker", "state", "reason", "reopens (UTC)", "trips", "hour $", "median hour $", "level", "errors")
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=column not in ("reason",))
    for row in rows:
        reason = f"{row['reason']}: {row['message']}" if row["reason"] else "-"
        errors = f"{row['window_failures']}/{row['window_calls']}" if row.get("window_calls") else "-"
        table.add_row(
            row["name"],
            row["state"],
            reason,
            _cell(row["reopens_at"]),
            str(row["trips"]),
            _cell(row.get("hour_spend_usd")),
            _cell(row.get("median_hourly_usd")),
            _cell(row["level"]),
            errors,
        )
    _whole_console(table).print(table)


@breakers_app.command("reset")
def reset(
    name: Annotated[str, typer.Argument(help="The breaker: global, agent:NAME, key:ID or model:PROVIDER/MODEL.")],
    config: ConfigOption = None,
    state: StoreOption = None,
) -> None:
    """Close breaker NAME in every worker (within guards.state_refresh_s); its account-wide figures start again.
    Its trip stays in its post-mortem file."""
    from fiscus.guards.listing import breaker_rows

    registry = _registry(config, state)
    try:
        try:
            registry.reset(name)
        except KeyError:
            known = ", ".join(row["name"] for row in breaker_rows(registry)) or "none"
            raise ConfigError(f"no breaker named {name!r}; known: {known}") from None
    finally:
        registry.close()
    print(f"breaker {name} reset: closed in every worker")


def register(app: typer.Typer) -> None:
    app.add_typer(breakers_app, name="breakers")
