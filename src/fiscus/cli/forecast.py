"""`fiscus forecast`: the pre-launch cost model from recorded runs — per-run P50 / P95 per task class (or any
dimension), projected over the expected volume — and, on request, the policy whose monthly budgets follow it."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import typer

from fiscus.cli.ledger_option import ledger_url
from fiscus.pricing.cost import usd
from fiscus.reports.forecast import GROUP_DIMENSIONS, Forecast, ForecastError, budget_policy, forecast, ledger_runs
from fiscus.reports.period import ReportArgumentError, parse_period, parse_where


def forecast_command(
    ledger: Annotated[
        str | None, typer.Option("--ledger", help="Ledger URL (sqlite:///path or postgresql://…); default from config.")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="fiscus.yaml naming the ledger.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Runs recorded from: 7d, 24h… ago or an ISO date (UTC).")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="… until (exclusive), same forms.")] = None,
    where: Annotated[
        list[str] | None,
        typer.Option("--where", help="Keep only calls with dimension=value, e.g. environment=staging; repeatable."),
    ] = None,
    by: Annotated[
        str, typer.Option("--by", help="Group runs by this dimension: " + ", ".join(GROUP_DIMENSIONS) + ".")
    ] = "task_class",
    runs_per_day: Annotated[
        list[str] | None,
        typer.Option(
            "--runs-per-day",
            help="Expected production volume: N for every group, or GROUP=N per group (repeatable).",
        ),
    ] = None,
    days: Annotated[int, typer.Option("--days", help="Days in the projected period.")] = 30,
    policy_out: Annotated[
        Path | None,
        typer.Option("--policy-out", help="Write a policy with one monthly budget per group at its P95 ceiling."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (decimal strings) instead of a table.")] = False,
) -> None:
    """Per-run cost, tokens and calls at P50 and P95 for each group of recorded runs (a run is a session; a call
    outside one is a run of its own), projected over --runs-per-day × --days: P50 × volume is the operating
    target, P95 × volume the ceiling to budget, with alerts at 80 % of it."""
    from fiscus.ledger import open_ledger

    now = datetime.now(UTC)
    start, end = parse_period(since, until, now=now)
    volume = _volume(runs_per_day)
    filters = parse_where(where)
    with open_ledger(ledger_url(ledger, config)) as led:
        runs = ledger_runs(led, by, since=start, until=end, where=filters)  # the session rollup, not every event
        result = forecast(runs, by=by, runs_per_day=volume, days=days)
    if not result.groups:
        raise ForecastError("no runs recorded for this window and filter")
    if policy_out is not None:
        text = budget_policy(result)
        try:
            policy_out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ForecastError(f"--policy-out {policy_out}: cannot write ({exc.strerror})") from None
    if as_json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return
    _print(result, policy_out)


def _volume(items: list[str] | None) -> Decimal | dict[str, Decimal] | None:
    if not items:
        return None
    per_group: dict[str, Decimal] = {}
    single: Decimal | None = None
    for item in items:
        group, sep, text = item.rpartition("=")
        value = _positive(text, item)
        if sep:
            if not group.strip():
                raise ReportArgumentError(f"--runs-per-day {item!r}: expected N or GROUP=N")
            per_group[group.strip()] = value
        else:
            single = value
    if single is not None and per_group:
        raise ReportArgumentError("--runs-per-day: give one figure for every group, or GROUP=N for each, not both")
    return single if single is not None else per_group


def _positive(text: str, item: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value <= 0:
        raise ReportArgumentError(f"--runs-per-day {item!r}: expected a positive number of runs")
    return value


def _print(result: Forecast, policy_out: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 200)
    projected = any(g.runs_per_day is not None for g in result.groups)
    table = Table(title=f"cost per run by {result.by}" + (f", projected over {result.days} days" if projected else ""))
    columns = ["group", "runs", "calls p50/p95", "tokens p50/p95", "cost p50", "cost p95", "mean"]
    if projected:
        columns += ["runs/day", f"{result.days}d at P50", f"{result.days}d at P95"]
    for column in columns:
        table.add_column(column, justify="left" if column == "group" else "right", no_wrap=True)
    for g in result.groups:
        row = [
            g.group if g.group is not None else "(none)",
            f"{g.runs:,}",
            f"{g.calls_p50}/{g.calls_p95}",
            f"{g.tokens_p50:,}/{g.tokens_p95:,}",
            usd(g.cost_p50),
            usd(g.cost_p95),
            usd(g.cost_mean),
        ]
        if projected:
            p50, p95 = g.period_p50, g.period_p95
            runs = format(g.runs_per_day.normalize(), "f") if g.runs_per_day is not None else "-"
            row += [runs, usd(p50) if p50 is not None else "-", usd(p95) if p95 is not None else "-"]
        table.add_row(*row)
    console.print(table)
    if projected:
        console.print("P50 × volume is the operating target; P95 × volume the ceiling to budget (alert at 80 % of it).")
    for note in result.notes:
        console.print(f"note: {note}")
    if policy_out is not None:
        console.print(f"policy with one monthly budget per group written to {policy_out}")


def register(app: typer.Typer) -> None:
    app.command("forecast")(forecast_command)
