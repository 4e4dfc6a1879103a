"""`fiscus emulate`: serve the offline OpenAI / Anthropic / Gemini emulator."""

from __future__ import annotations

import sys
from typing import Annotated

import typer


def emulate(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 8900,
    latency_ms: Annotated[
        float, typer.Option("--latency-ms", min=0, help="Delay before each response starts, in milliseconds.")
    ] = 0.0,
    token_latency_ms: Annotated[
        float,
        typer.Option("--token-latency-ms", min=0, help="Delay per output token, in milliseconds (stream pacing)."),
    ] = 0.0,
    error_rate: Annotated[
        float,
        typer.Option("--error-rate", min=0.0, max=1.0, help="Fraction of calls failed with a provider-format 500."),
    ] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed for injected errors and reply wording.")] = 0,
    batch_delay_ms: Annotated[
        float,
        typer.Option("--batch-delay-ms", min=0, help="How long an OpenAI or Anthropic batch takes to complete."),
    ] = 300.0,
) -> None:
    """Serve emulated OpenAI, Anthropic and Gemini APIs on their real paths and formats.

    Base URLs: OpenAI SDK http://HOST:PORT/v1, Anthropic SDK http://HOST:PORT, Gemini REST
    http://HOST:PORT/v1beta; OpenAI Files + Batch and Anthropic Message Batches included. Any non-empty API key
    is accepted. Requests can steer faults, latency
    and usage with x-emulator-* headers; counters are at GET /_emulator/stats.
    """
    import uvicorn  # heavy imports stay inside the command

    from fiscus.emulator import EmulatorConfig, create_app

    config = EmulatorConfig(
        latency_ms=latency_ms,
        token_latency_ms=token_latency_ms,
        error_rate=error_rate,
        seed=seed,
        batch_delay_ms=batch_delay_ms,
    )
    loop = "asyncio" if sys.platform == "win32" else "uvloop"
    print(f"fiscus emulator on http://{host}:{port}", file=sys.stderr)
    uvicorn.run(create_app(config), host=host, port=port, loop=loop, log_level="warning", access_log=False)


def register(app: typer.Typer) -> None:
    app.command("emulate")(emulate)
