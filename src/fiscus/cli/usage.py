"""`fiscus usage`: read a saved provider response (body or SSE stream), print its normalised usage and cost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from fiscus.config import load_config
from fiscus.errors import FiscusError, PricingError
from fiscus.pricing import Cost, PriceCatalogue, usd
from fiscus.usage import Usage, read_usage
from fiscus.usage.wire import PROVIDER_FORMATS

_PROVIDERS = ", ".join(PROVIDER_FORMATS)


def usage(
    file: Annotated[Path, typer.Argument(help="A saved response body (JSON) or SSE stream, as the provider sent it.")],
    provider: Annotated[
        str | None,
        typer.Option("--provider", "-p", help=f"Read it as this provider's and price it at its rates: {_PROVIDERS}."),
    ] = None,
    request: Annotated[
        Path | None,
        typer.Option(
            "--request",
            help="The request body that was sent: a stream cut off before its usage is "
            "estimated with this input, not 0.",
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Price as this model (default: the model the response names).")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="fiscus.yaml with price overrides.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (decimal strings) instead of a table.")] = False,
) -> None:
    """Print the usage of a saved response in one convention (uncached input, cache reads and writes, output
    with reasoning, server tools, billed iterations) and what it cost. A stream cut off before its usage is
    estimated from its text (and the --request, when given) and flagged; a malformed count is an error."""
    if provider is not None and provider.lower() not in PROVIDER_FORMATS:
        raise FiscusError(f"--provider: expected one of {', '.join(PROVIDER_FORMATS)}, got {provider!r}")
    data = _read(file)
    sent = None
    if request is not None:
        try:
            sent = orjson.loads(_read(request))
        except orjson.JSONDecodeError as exc:
            raise FiscusError(f"{request}: not a JSON request body ({exc.args[0]})") from None
        if not isinstance(sent, dict):
            raise FiscusError(f"{request}: expected a JSON object (the request body)")
    reading = read_usage(data, provider=provider, request=sent)
    model_name = model or reading.model
    if not model_name:
        raise PricingError(f"{file}: the response names no model; pass --model")
    catalogue = PriceCatalogue(load_config(config).pricing)
    cost = catalogue.price(reading.usage, provider=reading.provider, model=model_name)
    if as_json:
        payload: dict[str, object] = {
            "provider": reading.provider,
            "model": model_name,
            "format": reading.format.value,
            "streamed": reading.streamed,
            "usage": reading.usage.to_dict(),
            "cost": cost.to_dict(),
            "total_usd": cost.to_dict()["total_usd"],
            "notes": notes(reading.usage, cost),
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
    tools = u.detail.server_tools if u.detail else ()
    if tools or cost.tools:
        table.add_row("server tools", ", ".join(f"{unit} {n:,}" for unit, n in tools), usd(cost.tools))
    table.add_row("total", f"{u.total_tokens:,}", usd(cost.total), style="bold")
    console = Console()
    console.print(table)
    for note in notes(u, cost):
        console.print(f"note: {note}")


def notes(usage: Usage, cost: Cost) -> list[str]:
    """What a reader of the figures should know: estimates, split modalities, iterations, whose price it is."""
    out = []
    detail = usage.detail
    if usage.estimated:
        out.append(f"estimated: {usage.estimate_note or 'the provider reported no usage'}")
    if detail is not None and detail.modalities:
        split = ", ".join(f"{part} {modality} {n:,}" for part, modality, n in detail.modalities)
        out.append(f"priced by modality: {split}")
    if detail is not None and detail.iterations:
        passes = ", ".join(f"{it.kind}{f' on {it.model}' if it.model else ''}" for it in detail.iterations)
        out.append(f"{len(detail.iterations)} billed iterations, each at its own model's rates: {passes}")
    if cost.provider_reported:
        out.append("the total is the provider's own figure for the call (usage.cost)")
    if cost.fallback_price:
        out.append("unknown model, priced with the configured fallback")
    return out


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise FiscusError(f"{path}: no such file") from None
    except OSError as exc:
        raise FiscusError(f"{path}: cannot read ({exc.strerror or exc})") from None


def register(app: typer.Typer) -> None:
    app.command("usage")(usage)
