"""Entry point of the `fiscus` command. Each command module registers itself; errors become one line, exit 2."""

from __future__ import annotations

import sys
from importlib import import_module

import typer
from typer._click.exceptions import NoArgsIsHelpError, TyperException

from fiscus.errors import FiscusError

app = typer.Typer(
    name="fiscus",
    help="Inference budget governance: price, attribute, bound and report every LLM call.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Each module exposes `register(app)`; heavy imports (web servers, drivers) stay inside the commands.
_COMMAND_MODULES = (
    "price",
    "usage",
    "report",
    "forecast",
    "model",
    "replay",
    "breakeven",
    "audit",
    "budgets",
    "breakers",
    "alerts",
    "keys",
    "overrides",
    "batches",
    "serve",
    "emulate",
    "demo",
)


@app.callback()
def _root() -> None:
    """Inference budget governance: price, attribute, bound and report every LLM call."""


_loaded: set[str] = set()


def _load_commands() -> None:
    for name in _COMMAND_MODULES:
        if name in _loaded:
            continue  # main() may run many times in one process (tests): register each command once
        _loaded.add(name)
        try:
            module = import_module(f"fiscus.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"fiscus.cli.{name}":
                continue  # command not built yet
            raise
        module.register(app)


def fail(message: str) -> typer.Exit:
    """Print one error line on stderr and return the exit to raise (code 2)."""
    print(f"fiscus: error: {message}", file=sys.stderr)
    return typer.Exit(code=2)


def main(argv: list[str] | None = None) -> int:
    _load_commands()
    try:
        result = app(args=argv, standalone_mode=False, prog_name="fiscus")
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        print("fiscus: aborted", file=sys.stderr)
        return 130
    except NoArgsIsHelpError as exc:
        print(exc.format_message())
        return 2
    except TyperException as exc:
        print(f"fiscus: error: {exc.format_message()}", file=sys.stderr)
        return 2
    except FiscusError as exc:
        print(f"fiscus: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
