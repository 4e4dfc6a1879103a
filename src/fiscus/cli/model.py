"""`fiscus model SPEC.yaml`: the pre-launch cost model — per run and per month P50 / P95 by workflow and task
class, from a workload spec, before any agent has run."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from fiscus.config import load_config
from fiscus.errors import FiscusError
from fiscus.pricing import PriceCatalogue, usd


def model_command(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC.yaml", help="The workload spec (see README).")],
    samples: Annotated[
        int | None, typer.Option("--samples", min=20, help="Simulated runs per workflow (default: the spec's).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="RNG seed (default: the spec's; same seed, same figures).")
    ] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Price with the catalogue of this ISO date (default: the spec's, else today)."),
    ] = None,
    sweep_text: Annotated[
        str | None,
        typer.Option(
            "--sweep", help="Run again for each value of one field: AGENT.FIELD=V1,V2,... e.g. researcher.steps=1,5,7."
        ),
    ] = None,
    policy_out: Annotated[
        Path | None,
        typer.Option(
            "--policy-out", help="Write a policy: a monthly budget per group at its P95 ceiling, alerts at 50/80/100 %."
        ),
    ] = None,
    policy_by: Annotated[str, typer.Option("--policy-by", help="Budgets per workflow or per task_class.")] = "workflow",
    against: Annotated[
        str | None,
        typer.Option(
            "--against",
            help="Calibrate: compare with the sessions this ledger (URL) recorded for the same task classes.",
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="With --against: from 30m, 24h, 7d, 4w ago or an ISO date (UTC).")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="With --against: end (exclusive), same forms.")] = None,
    where: Annotated[
        list[str] | None, typer.Option("--where", help="With --against: only events with dimension=value; repeatable.")
    ] = None,
    tolerance: Annotated[
        float, typer.Option("--tolerance", min=0.01, max=10, help="With --against: how far off (relative) is off.")
    ] = 0.25,
    config: Annotated[Path | None, typer.Option("--config", help="fiscus.yaml with price overrides.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (decimal strings) instead of tables.")] = False,
) -> None:
    """Simulate the spec's workflows run by run (seeded Monte Carlo) and print per run and per month P50 / P95
    cost, tokens and calls by workflow and task class, priced with the catalogue at a date. A month is the
    per-run figure x runs per day x days: P50 the operating target, P95 the ceiling to budget."""
    from fiscus.reports.model import load_spec, model_workload
    from fiscus.reports.model.sweep import sweep

    if policy_by not in ("workflow", "task_class"):
        raise FiscusError(f"--policy-by {policy_by!r}: use workflow or task_class")
    changes = _changes(samples, seed, at)
    catalogue = PriceCatalogue(load_config(config).pricing)
    spec = load_spec(spec_path, changes=changes)
    result = model_workload(spec, catalogue, source=str(spec_path))
    if against is None and (since or until or where):
        raise FiscusError("--since, --until and --where go with --against LEDGER")
    swept = sweep(spec_path, sweep_text, catalogue, changes=changes) if sweep_text else None
    calibrations = _calibrate(result, against, since, until, where, tolerance) if against else None
    if policy_out is not None:
        try:
            policy_out.write_text(result.policy(policy_by), encoding="utf-8")
        except OSError as exc:
            raise FiscusError(f"--policy-out {policy_out}: cannot write ({exc.strerror})") from None
    if as_json:
        payload = result.to_dict()
        if swept is not None:
            payload["sweep"] = swept.to_dict()
        if calibrations is not None:
            payload["calibration"] = [c.to_dict() for c in calibrations]
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    console = _console()
    _print_model(console, result)
    if swept is not None:
        _print_sweep(console, swept)
    if calibrations is not None:
        _print_calibration(console, calibrations)
    if policy_out is not None:
        console.print(f"policy with one monthly budget per {policy_by} (alerts at 50/80/100 %) written to {policy_out}")


def _changes(samples: int | None, seed: int | None, at: str | None) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if samples is not None:
        changes["samples"] = samples
    if seed is not None:
        changes["seed"] = seed
    if at is not None:
        try:
            changes["prices_at"] = date.fromisoformat(at.strip()[:10]).isoformat()
        except ValueError:
            raise FiscusError(f"--at {at!r}: expected an ISO date such as 2026-12-01") from None
    return changes


def _calibrate(
    result: Any, against: str, since: str | None, until: str | None, where: list[str] | None, tolerance: float
) -> list[Any]:
    from datetime import UTC, datetime
    from decimal import Decimal

    from fiscus.cli.ledger_option import ledger_url
    from fiscus.ledger import open_ledger
    from fiscus.reports.model.calibrate import calibrate
    from fiscus.reports.period import parse_period, parse_where

    start, end = parse_period(since, until, now=datetime.now(UTC))
    filters = parse_where(where)
    with open_ledger(ledger_url(against, None)) as led:
        events = led.events(since=start, until=end, where=filters)
        return calibrate(result, events, tolerance=Decimal(str(tolerance)))


def _console() -> Any:
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 200)  # piped: never cut figures short


def _pair(a: int, b: int) -> str:
    return f"{a:,}/{b:,}"


def _print_model(console: Any, result: Any) -> None:
    from rich.table import Table

    days = result.spec.days
    table = Table(
        title=f"workflows: per run and per {days}-day month (prices of {result.prices_at})", title_justify="left"
    )
    heads = ["workflow", "runs/day", "calls p50/p95", "input tok p50/p95", "output tok p50/p95", "run p50", "run p95"]
    heads += ["month p50", "month p95", "month per call"]
    for head in heads:
        table.add_column(head, justify="left" if head == "workflow" else "right", no_wrap=True)
    for w in result.workflows:
        f = w.forecast
        table.add_row(
            w.name,
            format(f.runs_per_day.normalize(), "f"),
            _pair(f.calls_p50, f.calls_p95),
            _pair(w.input_p50, w.input_p95),
            _pair(w.output_p50, w.output_p95),
            usd(f.cost_p50),
            usd(f.cost_p95),
            usd(f.period_p50),
            usd(f.period_p95),
            usd(w.month_per_call),
        )
    table.add_row("total", "", "", "", "", "", "", usd(result.month_p50), usd(result.month_p95), "", style="bold")
    console.print(table)
    classes = Table(title="task classes: per thread (one agent's session) and per month", title_justify="left")
    heads = ["task class", "models", "in $/MTok", "threads/day", "calls p50/p95", "tokens p50/p95", "p50", "p95"]
    heads += ["month p50", "month p95"]
    for head in heads:
        classes.add_column(head, justify="left" if head in ("task class", "models") else "right", no_wrap=True)
    for t in result.task_classes:
        f = t.forecast
        mix = ", ".join(f"{m} {format((s * 100).quantize(1), 'f')}%" for m, s in t.models.items())
        classes.add_row(
            t.name,
            mix,
            "-" if t.input_mtok is None else f"${format(t.input_mtok.normalize(), 'f')}",
            format(f.runs_per_day.quantize(1).normalize(), "f") if f.runs_per_day < 10 else f"{f.runs_per_day:,.0f}",
            _pair(f.calls_p50, f.calls_p95),
            _pair(f.tokens_p50, f.tokens_p95),
            usd(f.cost_p50),
            usd(f.cost_p95),
            usd(f.period_p50),
            usd(f.period_p95),
        )
    console.print(classes)
    console.print(
        f"{result.spec.samples:,} simulated runs per workflow, seed {result.spec.seed}. Month = per-run figure x "
        f"runs/day x {days}: P50 the operating target, P95 the ceiling to budget."
    )
    for note in result.notes:
        console.print(f"note: {note}")


def _print_sweep(console: Any, swept: Any) -> None:
    from rich.table import Table

    table = Table(title=f"sweep of {swept.setting} (workflows it changes)", title_justify="left")
    table.add_column(swept.setting.rsplit(".", 1)[-1], justify="right")
    names = [w.name for w in swept.points[0][1].workflows]
    changed = [i for i, _ in enumerate(names) if len({r.workflows[i].forecast.period_p95 for _, r in swept.points}) > 1]
    for i in changed:
        table.add_column(f"{names[i]} month p50", justify="right")
        table.add_column(f"{names[i]} month p95", justify="right")
    table.add_column("total p50", justify="right")
    table.add_column("total p95", justify="right")
    for value, result in swept.points:
        cells = [str(value)]
        for i in changed:
            f = result.workflows[i].forecast
            cells += [usd(f.period_p50), usd(f.period_p95)]
        table.add_row(*cells, usd(result.month_p50), usd(result.month_p95))
    console.print(table)


def _print_calibration(console: Any, calibrations: list[Any]) -> None:
    from decimal import Decimal

    from rich.table import Table

    table = Table(title="calibration: the spec against staging, per session of each task class", title_justify="left")
    for head in ("task class", "sessions", "calls p50/p95", "cost p50/p95", "growth/step", "cache hit", "output/call"):
        table.add_column(head, justify="left" if head == "task class" else "right", no_wrap=True)
    for c in calibrations:
        for label, p in (("spec", c.modelled), ("staging", c.recorded)):
            if p is None:
                table.add_row(f"{c.task_class} ({label})", "0", "-", "-", "-", "-", "-")
                continue
            table.add_row(
                f"{c.task_class} ({label})",
                f"{p.threads:,}",
                _pair(p.calls_p50, p.calls_p95),
                f"{usd(p.cost_p50)}/{usd(p.cost_p95)}",
                f"{p.growth_p50:,}",
                f"{(p.cache_hit * 100).quantize(Decimal(1))} %",
                f"{p.output_p50:,}",
            )
    console.print(table)
    for c in calibrations:
        console.print(c.verdict)


def register(app: typer.Typer) -> None:
    app.command("model")(model_command)
