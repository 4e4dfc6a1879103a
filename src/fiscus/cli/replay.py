"""`fiscus replay`: last month under another policy or pricing — actual beside what-if per task class, agent or
workflow, with the saving and the assumptions it took."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from fiscus.attribution import DIMENSIONS
from fiscus.config import load_config
from fiscus.errors import FiscusError, UnknownModelError
from fiscus.pricing import PriceCatalogue, usd
from fiscus.reports.period import ReportArgumentError, parse_by, parse_moment, parse_period, parse_where


def replay_command(
    ledger: Annotated[
        str | None, typer.Option("--ledger", help="Ledger URL (sqlite:///path or postgresql://…); default from config.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Start: 30m, 24h, 7d, 4w ago or an ISO date/time, UTC. Default: all.")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="End (exclusive), same forms as --since.")] = None,
    where: Annotated[
        list[str] | None, typer.Option("--where", help="Keep only events with dimension=value; repeatable.")
    ] = None,
    by: Annotated[str, typer.Option("--by", help="Group by these attribution dimensions, comma-separated.")] = (
        "task_class"
    ),
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="TASK_CLASS=MODEL (or PROVIDER/MODEL): that class's calls on another model."),
    ] = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="A policy whose routes: move each task class within its ladder.")
    ] = None,
    cache: Annotated[
        str, typer.Option("--cache", help="recorded (as it was), on (sessions reuse their prefix) or off.")
    ] = "recorded",
    context: Annotated[
        list[str] | None, typer.Option("--context", help="TASK_CLASS=TOKENS: cap that class's input; repeatable.")
    ] = None,
    batch: Annotated[
        list[str] | None, typer.Option("--batch", help="A deferrable task class sent as batch; repeatable.")
    ] = None,
    prices: Annotated[
        str, typer.Option("--prices", help="call-time (each call's own date) or now (today's, or --at's).")
    ] = "call-time",
    at: Annotated[str | None, typer.Option("--at", help="With --prices now: the catalogue of this ISO date.")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="fiscus.yaml: the ledger and price overrides.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (decimal strings) instead of a table.")] = False,
) -> None:
    """Re-price a ledger window from its recorded usage under other routes, another model per task class, caching
    on or off, context windows, batch for deferrable classes, or today's prices; print actual vs what-if per group
    with the saving and the assumptions it had to make."""
    from fiscus.cli.ledger_option import ledger_url
    from fiscus.ledger import open_ledger
    from fiscus.policy.load import load_policy
    from fiscus.reports.replay import WhatIf, replay

    if cache not in ("recorded", "on", "off"):
        raise ReportArgumentError(f"--cache {cache!r}: use recorded, on or off")
    if prices not in ("call-time", "now"):
        raise ReportArgumentError(f"--prices {prices!r}: use call-time or now")
    if at is not None and prices != "now":
        raise ReportArgumentError("--at goes with --prices now")
    now = datetime.now(UTC)
    start, end = parse_period(since, until, now=now)
    dims = parse_by(by) or ("task_class",)

    for dim in dims:
        if dim not in DIMENSIONS:
            raise ReportArgumentError(f"--by {dim!r}: use attribution dimensions ({', '.join(DIMENSIONS)})")
    catalogue = PriceCatalogue(load_config(config).pricing)
    models = _pairs(model, "--model", "TASK_CLASS=MODEL")
    windows = {k: _tokens(k, v) for k, v in _pairs(context, "--context", "TASK_CLASS=TOKENS").items()}
    what_if = WhatIf(
        models=models,
        policy=load_policy(policy) if policy is not None else None,
        cache=cache,  # type: ignore[arg-type]
        context=windows,
        batch=frozenset(b.strip() for b in batch or () if b.strip()),
        prices_at=(parse_moment(at, now=now, option="--at") if at else now) if prices == "now" else None,
    )
    with open_ledger(ledger_url(ledger, config)) as led:
        events = led.events(since=start, until=end, where=parse_where(where))
        try:
            result = replay(events, what_if, catalogue, by=dims)
        except UnknownModelError as exc:
            raise FiscusError(f"--model/--policy: {exc}") from None
    if not result.rows:
        raise FiscusError("no calls recorded for this window and filter")
    if as_json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return
    _print(result)


def _pairs(items: list[str] | None, option: str, form: str) -> dict[str, str]:
    pairs = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ReportArgumentError(f"{option} {item!r}: expected {form}")
        pairs[key.strip()] = value.strip()
    return pairs


def _tokens(task_class: str, text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ReportArgumentError(f"--context {task_class}={text}: expected a positive number of tokens")
    return int(text)


def _print(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 200)
    table = Table(title="replay: actual vs what-if", show_footer=True, title_justify="left")
    for i, dim in enumerate(result.by):
        table.add_column(dim, footer="total" if i == 0 else "")
    t = result.total
    columns = [
        ("calls", f"{t.calls:,}"),
        ("moved", f"{t.moved:,}"),
        ("actual", usd(t.actual)),
        ("what-if", usd(t.what_if)),
        ("saving", usd(t.saving)),
        ("saving %", _share(t.saving_share)),
    ]
    for head, footer in columns:
        table.add_column(head, footer=footer, justify="right", no_wrap=True)
    for row in result.rows:
        cells = [row.group.get(d) or "(none)" for d in result.by]
        table.add_row(
            *cells,
            f"{row.calls:,}",
            f"{row.moved:,}",
            usd(row.actual),
            usd(row.what_if),
            usd(row.saving),
            _share(row.saving_share),
        )
    console.print(table)
    for note in result.assumptions:
        console.print(f"assumed: {note}")


def _share(share: Any) -> str:
    from decimal import Decimal

    return "-" if share is None else f"{(share * 100).quantize(Decimal('0.1'))} %"


def register(app: typer.Typer) -> None:
    app.command("replay")(replay_command)
