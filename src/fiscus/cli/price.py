"""`fiscus price`: the cost of a call of a given shape, part by part."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fiscus.config import load_config
from fiscus.errors import FiscusError
from fiscus.pricing import PriceCatalogue, usd
from fiscus.usage import Usage
from fiscus.usage.model import UsageDetail


def price(
    provider: Annotated[
        str,
        typer.Option(
            "--provider",
            "-p",
            help="Provider: openai, anthropic, gemini/google, azure, bedrock, vertex, deepseek, groq, together, "
            "mistral, xai, openrouter (or any the catalogue knows).",
        ),
    ],
    model: Annotated[str, typer.Option("--model", "-m", help="Model name as sent to the provider.")],
    input_tokens: Annotated[
        int, typer.Option("--input-tokens", min=0, help="Uncached input tokens (cache reads and writes apart).")
    ] = 0,
    output_tokens: Annotated[
        int, typer.Option("--output-tokens", min=0, help="Output tokens, reasoning included.")
    ] = 0,
    reasoning_tokens: Annotated[
        int, typer.Option("--reasoning-tokens", min=0, help="Of the output, how many were reasoning.")
    ] = 0,
    cache_read_tokens: Annotated[int, typer.Option("--cache-read-tokens", min=0, help="Input read from cache.")] = 0,
    cache_write_tokens: Annotated[
        int, typer.Option("--cache-write-tokens", min=0, help="Input written to cache, 5-minute TTL.")
    ] = 0,
    cache_write_1h_tokens: Annotated[
        int, typer.Option("--cache-write-1h-tokens", min=0, help="Input written to cache, 1-hour TTL.")
    ] = 0,
    web_searches: Annotated[
        int, typer.Option("--web-searches", min=0, help="Server-side web searches run (billed per 1,000).")
    ] = 0,
    batch: Annotated[bool, typer.Option("--batch", help="Priced as a batch (asynchronous) request.")] = False,
    calls: Annotated[int, typer.Option("--calls", min=1, help="Multiply by this many identical calls.")] = 1,
    at: Annotated[
        str | None, typer.Option("--at", help="Price in force at this ISO date or time (default: now).")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="fiscus.yaml with price overrides.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (decimal strings) instead of a table.")] = False,
) -> None:
    """Print what a call costs: uncached input, cache reads, cache writes (5 min / 1 h), output, web searches,
    total. Prices are the catalogue's (genai-prices) unless the config overrides them."""
    catalogue = PriceCatalogue(load_config(config).pricing)
    moment = _parse_moment(at)
    try:
        usage = Usage(
            input_tokens=input_tokens,
            cache_read_tokens=cache_read_tokens,
            cache_write_5m_tokens=cache_write_tokens,
            cache_write_1h_tokens=cache_write_1h_tokens,
            output_tokens=output_tokens,
            reasoning_tokens=reasoning_tokens,
            detail=UsageDetail(server_tools=(("web_searches", web_searches),)) if web_searches else None,
        )
    except ValueError as exc:
        raise FiscusError(str(exc)) from None
    sheet = catalogue.sheet(provider=provider, model=model, at=moment, batch=batch)
    cost = sheet.cost(usage) * calls
    if as_json:
        payload = {
            "provider": provider,
            "model": model,
            "catalogue_model": sheet.model,
            "batch": batch,
            "calls": calls,
            "at": moment.isoformat(),
            "usage": usage.to_dict(),
            "cost": cost.to_dict(),
            "total_usd": cost.to_dict()["total_usd"],
            "fallback_price": sheet.fallback_price,
            "notes": list(sheet.notes),
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    title = f"{provider}/{model}" + (" (batch)" if batch else "") + (f" x {calls} calls" if calls > 1 else "")
    table = Table(title=title)
    table.add_column("part")
    table.add_column("tokens", justify="right")
    table.add_column("rate $/MTok", justify="right")
    table.add_column("cost", justify="right")
    total_in = usage.total_input_tokens
    rows = [
        ("input (uncached)", usage.input_tokens, sheet.input, cost.input),
        ("cache read", usage.cache_read_tokens, sheet.cache_read_rate, cost.cache_read),
        ("cache write 5m", usage.cache_write_5m_tokens, sheet.cache_write_5m_rate, cost.cache_write_5m),
        ("cache write 1h", usage.cache_write_1h_tokens, sheet.cache_write_1h_rate, cost.cache_write_1h),
        ("output", usage.output_tokens, sheet.output, cost.output),
    ]
    for name, tokens, rate, part in rows:
        table.add_row(name, f"{tokens * calls:,}", f"{rate.at(total_in).normalize():f}", usd(part))
    if web_searches:
        fee = next((price for unit, price, _ in sheet.tool_rates if unit == "web_searches"), None)
        rate = "none in the catalogue" if fee is None else f"{fee.normalize():f} / 1k"
        table.add_row("web searches", f"{web_searches * calls:,}", rate, usd(cost.tools))
    table.add_row("total", f"{usage.total_tokens * calls:,}", "", usd(cost.total), style="bold")
    console = Console()
    console.print(table)
    for note in sheet.notes:
        console.print(f"note: {note}")
    if sheet.fallback_price:
        console.print("note: unknown model, priced with the configured fallback")


def _parse_moment(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise FiscusError(f"--at: expected an ISO date or time, got {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def register(app: typer.Typer) -> None:
    app.command("price")(price)
