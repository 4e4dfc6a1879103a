"""`fiscus usage`: read a saved provider response (body or SSE stream), print its normalised usage and cost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fiscus.config import load_config
from fiscus.errors import FiscusError, PricingError
from fiscus.pricing import PriceCatalogue, usd
from fiscus.usage import read_usage
from fiscus.usage.wire import PROVIDER_FORMATS


def usage(
    file: Annotated[Path, typer.Argument(help="A saved response body (JSON) or SSE stream, as the provider sent it.")],
    provider: Annotated[
        str | None,
        typer.Option("--provider", "-p", help="openai, anthropic, gemini or google: only read it as this provider's."),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Price as this model (default: the model the response names).")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="fiscus.yaml with price overrides.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (decimal strings) instead of a table.")] = False,
) -> None:
    """Print the usage of a saved response in one convention (uncached input, cache reads and writes, output
    with reasoning) and what it cost. A stream cut off before its usage is estimated from its text and flagged."""
    if provider is not None and provider.lower() not in PROVIDER_FORMATS:
        raise FiscusError(f"--provider: expected one of {', '.join(PROVIDER_FORMATS)}, got {provider!r}")
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise FiscusError(f"{file}: no such file") from None
    except OSError as exc:
        raise FiscusError(f"{file}: cannot read ({exc.strerror or exc})") from None
    reading = read_usage(data, provider=provider)
    model_name = model or reading.model
    if not model_name:
        raise PricingError(f"{file}: the response names no model; pass --model")
    catalogue = PriceCatalogue(load_config(config).pricing)
    cost = catalogue.price(reading.usage, provider=reading.provider, model=model_name)
    if as_json:
        payload = {
            "provider": reading.provider,
            "model": model_name,
            "format": reading.format.value,
            "streamed": reading.streamed,
            "usage": reading.usage.to_dict(),
            "cost": cost.to_dict(),
            "total_usd": cost.to_dict()["total_usd"],
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    u = reading.usage
    kind = "stream" if reading.streamed else "body"
    table = Table(title=f"{reading.provider}/{model_name} ({reading.format.value} {kind})")
    table.add_column("part")
    table.add_column("tokens", justify="right")
    table.add_column("cost", justify="right")
    table.add_row("input (uncached)", f"{u.input_tokens:,}", usd(cost.input))
    table.add_row("cache read", f"{u.cache_read_tokens:,}", usd(cost.cache_read))
    table.add_row("cache write 5m", f"{u.cache_write_5m_tokens:,}", usd(cost.cache_write_5m))
    table.add_row("cache write 1h", f"{u.cache_write_1h_tokens:,}", usd(cost.cache_write_1h))
    table.add_row("output", f"{u.output_tokens:,}", usd(cost.output))
    table.add_row("  of which reasoning", f"{u.reasoning_tokens:,}", "")
    table.add_row("total", f"{u.total_tokens:,}", usd(cost.total), style="bold")
    console = Console()
    console.print(table)
    if u.estimated:
        console.print("note: the stream ended before the provider reported usage; counts are estimated")
    if cost.fallback_price:
        console.print("note: unknown model, priced with the configured fallback")


def register(app: typer.Typer) -> None:
    app.command("usage")(usage)
