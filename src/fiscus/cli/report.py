"""`fiscus report`: spend from the ledger, grouped by any dimensions, as a table, JSON or chargeback CSV."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from fiscus.attribution import DIMENSIONS
from fiscus.cli.ledger_option import ledger_url
from fiscus.reports.period import ReportArgumentError, parse_by, parse_period, parse_where

_BY_HELP = (
    "Group by these, comma-separated: "
    + ", ".join(DIMENSIONS)
    + ", model (the model that answered), requested_model, provider, status, day or hour (UTC)."
)


def report(
    ctx: typer.Context,
    ledger: Annotated[
        str | None, typer.Option("--ledger", help="Ledger URL (sqlite:///path or postgresql://…); default from config.")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="fiscus.yaml naming the ledger (default: sqlite:///.fiscus/ledger.db)."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Start: 30m, 24h, 7d or 4w ago, or an ISO date/time, UTC. Default: all."),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="End (exclusive), same forms as --since. Default: now.")
    ] = None,
    by: Annotated[str | None, typer.Option("--by", help=_BY_HELP)] = None,
    where: Annotated[
        list[str] | None, typer.Option("--where", help="Keep only events with dimension=value; repeatable.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (decimal strings) instead of a table.")] = False,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="Print the chargeback CSV: a header, one row per group, exact decimals.")
    ] = False,
) -> None:
    """Spend, tokens, requests, cache hit rate, saving (against the same calls ungoverned, by lever; refused calls
    and calls a budget degraded counted apart, never as a saving) and cost per outcome per case (session), with
    totals, per group. `fiscus report weekly` is the weekly review."""
    if ctx.invoked_subcommand is not None:
        return
    from fiscus.ledger import SpendQuery, open_ledger
    from fiscus.reports.cases import case_costs
    from fiscus.reports.savings import degraded_spend, savings_table
    from fiscus.reports.spend import SpendReport

    if as_json and as_csv:
        raise ReportArgumentError("--json and --csv exclude each other; pick one")
    now = datetime.now(UTC)
    start, end = parse_period(since, until, now=now)
    query = SpendQuery(by=parse_by(by), since=start, until=end, where=parse_where(where))
    url = ledger_url(ledger, config)
    with open_ledger(url) as led:
        rows = led.spend(query)
        cases = case_costs(led, by=query.by, since=start, until=end, where=query.where) if rows else []
        degraded = degraded_spend(led, query) if rows else []
    result = SpendReport(query=query, rows=rows, generated_at=now, cases=cases, degraded=degraded)
    if as_json:
        print(result.to_json())
    elif as_csv:
        sys.stdout.write(result.to_csv())
    else:
        from rich.console import Console

        console = Console(width=None if sys.stdout.isatty() else 200)  # piped: never cut figures short
        if not rows:
            console.print(f"No spend recorded in {url} for this window and filter.")
            return
        console.print(result.to_table())
        by_lever = savings_table(result.totals, result.degraded_totals)
        if by_lever is not None:
            console.print(by_lever)


def register(app: typer.Typer) -> None:
    from fiscus.cli.weekly import weekly

    report_app = typer.Typer(invoke_without_command=True, no_args_is_help=False)
    report_app.callback()(report)
    report_app.command("weekly")(weekly)
    app.add_typer(report_app, name="report")
