"""`fiscus breakeven`: the API vs a subscription plan vs self-hosting for the measured (or modelled) monthly
volume — each option's monthly cost and the volume where it crosses the API."""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer

from fiscus.config import load_config
from fiscus.pricing import PriceCatalogue, usd
from fiscus.reports.period import ReportArgumentError, parse_period, parse_where

_COUNT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMbB]?)\s*$")
_SCALE = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9}


def breakeven_command(
    ledger: Annotated[
        str | None, typer.Option("--ledger", help="Ledger URL whose traffic is the volume; default from config.")
    ] = None,
    since: Annotated[str, typer.Option("--since", help="The measured window: 30m, 24h, 7d, 4w ago or an ISO date.")] = (
        "30d"
    ),
    until: Annotated[str | None, typer.Option("--until", help="End of the window (exclusive). Default: now.")] = None,
    where: Annotated[
        list[str] | None, typer.Option("--where", help="Only events with dimension=value; repeatable.")
    ] = None,
    spec: Annotated[
        Path | None, typer.Option("--spec", help="Use a workload spec's modelled P50 month instead of the ledger.")
    ] = None,
    days: Annotated[int, typer.Option("--days", min=1, max=366, help="Days in the month compared.")] = 30,
    plan_price: Annotated[
        float | None, typer.Option("--plan-price", min=0.01, help="Subscription price per seat per month, USD.")
    ] = None,
    plan_seats: Annotated[int, typer.Option("--plan-seats", min=1, help="Seats held at least.")] = 1,
    plan_tokens: Annotated[
        str | None, typer.Option("--plan-tokens", help="Tokens one seat covers a month (its quota), e.g. 500M.")
    ] = None,
    plan_name: Annotated[str, typer.Option("--plan-name", help="The plan's name in the output.")] = "plan",
    plan_covers_third_party: Annotated[
        bool,
        typer.Option("--plan-covers-third-party", help="The plan's quota covers these agents' traffic (check first)."),
    ] = False,
    gpu_hour: Annotated[
        float | None, typer.Option("--gpu-hour", min=0.0001, help="Self-hosting: USD per GPU hour.")
    ] = (None),
    tokens_per_second: Annotated[
        float | None, typer.Option("--tokens-per-second", min=0.0001, help="Self-hosting: output tokens/s per GPU.")
    ] = None,
    input_tokens_per_second: Annotated[
        float | None,
        typer.Option("--input-tokens-per-second", min=0.0001, help="Prefill tokens/s per GPU (default: as output)."),
    ] = None,
    utilisation: Annotated[
        float, typer.Option("--utilisation", min=0.01, max=1, help="Self-hosting: the share of GPU time kept busy.")
    ] = 0.5,
    min_gpus: Annotated[int, typer.Option("--min-gpus", min=1, help="GPUs kept running at least.")] = 1,
    ops_monthly: Annotated[
        float, typer.Option("--ops-monthly", min=0, help="Self-hosting: fixed monthly operations, USD.")
    ] = 0.0,
    config: Annotated[
        Path | None, typer.Option("--config", help="fiscus.yaml: the ledger and price overrides.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (decimal strings) instead of a table.")] = False,
) -> None:
    """Monthly cost of the API, a subscription plan (price per seat, quota per seat, whether it covers third-party
    tools) and self-hosting (GPU $/hour, tokens/s, utilisation) for the volume the ledger measured (or a spec
    models), and the volume at which each becomes cheaper than the API."""
    from fiscus.reports.breakeven import Plan, SelfHost, breakeven

    if (gpu_hour is None) != (tokens_per_second is None):
        raise ReportArgumentError("self-hosting needs both --gpu-hour and --tokens-per-second")
    if plan_price is None and (plan_tokens or plan_covers_third_party or plan_seats != 1):
        raise ReportArgumentError("--plan-tokens, --plan-seats and --plan-covers-third-party go with --plan-price")
    volume = (
        _volume_from_spec(spec, days, config)
        if spec
        else _volume_from_ledger(ledger, config, since, until, where, days)
    )
    plan = None
    if plan_price is not None:
        plan = Plan(
            price_usd=_dec(plan_price),
            seats=plan_seats,
            tokens_per_seat=_count(plan_tokens, "--plan-tokens") if plan_tokens else None,
            covers_third_party=plan_covers_third_party,
            name=plan_name,
        )
    host = None
    if gpu_hour is not None and tokens_per_second is not None:
        host = SelfHost(
            gpu_hour_usd=_dec(gpu_hour),
            output_tokens_per_second=_dec(tokens_per_second),
            input_tokens_per_second=_dec(input_tokens_per_second) if input_tokens_per_second else None,
            utilisation=_dec(utilisation),
            min_gpus=min_gpus,
            ops_usd=_dec(ops_monthly),
        )
    result = breakeven(volume, plan=plan, self_host=host)
    if as_json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return
    _print(result)


def _dec(value: float) -> Decimal:
    return Decimal(str(value))  # as typed: 0.1 stays 0.1


def _count(text: str, option: str) -> int:
    match = _COUNT.match(text)
    if match is None or Decimal(match.group(1)) <= 0:
        raise ReportArgumentError(f"{option} {text!r}: expected a token count such as 500M, 2B or 750000")
    return int(Decimal(match.group(1)) * _SCALE[match.group(2).lower()])


def _volume_from_ledger(
    ledger: str | None, config: Path | None, since: str, until: str | None, where: list[str] | None, days: int
) -> Any:
    from fiscus.cli.ledger_option import ledger_url
    from fiscus.ledger import open_ledger
    from fiscus.reports.breakeven import volume_from_events

    now = datetime.now(UTC)
    start, end = parse_period(since, until, now=now)
    assert start is not None
    with open_ledger(ledger_url(ledger, config)) as led:
        events = led.events(since=start, until=end, where=parse_where(where))
        return volume_from_events(events, since=start, until=end or now, days=days)


def _volume_from_spec(spec: Path, days: int, config: Path | None) -> Any:
    from fiscus.reports.breakeven import Volume
    from fiscus.reports.model import load_spec, model_workload

    workload = load_spec(spec, changes={"days": days})
    result = model_workload(workload, PriceCatalogue(load_config(config).pricing), source=str(spec))
    runs = {w.name: w.forecast.period_runs or Decimal(0) for w in result.workflows}
    tokens_in = sum(w.input_p50 * runs[w.name] for w in result.workflows)
    tokens_out = sum(w.output_p50 * runs[w.name] for w in result.workflows)
    return Volume(
        int(Decimal(tokens_in).to_integral_value()),
        int(Decimal(tokens_out).to_integral_value()),
        result.month_p50,
        f"spec {spec} at P50, {days} days",
        days,
    )


def _print(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    v = result.volume
    console = Console(width=None if sys.stdout.isatty() else 200)
    title = f"breakeven for {v.tokens:,} tokens a month ({v.input_tokens:,} in, {v.output_tokens:,} out; {v.source})"
    table = Table(title=title, title_justify="left")
    for head in ("option", "per month", "cheaper than the API from", "at scale", "how"):
        table.add_column(head, justify="right" if head in ("per month", "cheaper than the API from") else "left")
    for option in result.options:
        if option.name == "api":
            crossing = "-"
        elif option.cheaper_from is None:
            crossing = "never"
        else:
            times = option.cheaper_from.quantize(Decimal("0.01"))
            crossing = f"{int(option.cheaper_from * v.tokens):,} tok ({times}x)"
        name = option.name if option.applies else f"{option.name} (not for these agents)"
        scale = "-" if option.name == "api" else ("cheaper" if option.at_scale else "dearer")
        table.add_row(name, usd(option.monthly_usd), crossing, scale, option.detail)
    console.print(table)
    for caveat in result.caveats:
        console.print(f"caveat: {caveat}")


def register(app: typer.Typer) -> None:
    app.command("breakeven")(breakeven_command)
