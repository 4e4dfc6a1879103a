"""`fiscus demo`: the whole system on this machine, no provider and no service needed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def demo(
    workdir: Annotated[
        Path, typer.Option("--dir", help="Where the demo keeps its ledger, budgets and keys (SQLite files).")
    ] = Path(".fiscus-demo"),
    steps: Annotated[int, typer.Option("--steps", min=1, max=200, help="Calls each agent makes.")] = 30,
) -> None:
    """Run the emulated providers and the gateway on SQLite, drive a small fleet of agents through it, show
    the budgets warn, downgrade and return partial results live, then print the spend report by agent."""
    from rich.console import Console

    from fiscus.demo.run import run_demo

    console = Console()
    if not console.is_terminal:
        console = Console(width=120)  # piped or captured: keep the tables whole
    run_demo(workdir, steps=steps, console=console)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
