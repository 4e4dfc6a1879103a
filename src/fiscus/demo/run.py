"""`fiscus demo`: the emulator, the gateway on the embedded default (SQLite), a small fleet, a live view,
and the spend report at the end. Nothing leaves this machine."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from fiscus.config import FiscusConfig, ProviderConfig
from fiscus.demo.fleet import Step, debate, researcher, triage
from fiscus.errors import FiscusError
from fiscus.notify import ChannelConfig, NotifyConfig
from fiscus.pricing import PriceCatalogue, usd
from fiscus.usage import Usage


@dataclass(slots=True)
class AgentView:
    """What the console shows for one agent, and the moments its budget changed its behaviour."""

    steps: int = 0
    spent: Decimal = Decimal(0)
    status: str = "ok"
    model: str = ""
    firsts: dict[str, int] = field(default_factory=dict)

    def add(self, step: Step) -> None:
        self.steps = step.n
        self.spent += step.cost
        self.model = step.served_model
        if step.guard == "loop_detected":
            self.status = "stopped: loop detected"
            self.firsts.setdefault("loop detected", step.n)
        elif step.guard == "breaker_open":
            self.status = "stopped: circuit breaker open"
            self.firsts.setdefault("breaker open", step.n)
        elif step.budget == "exhausted":
            self.status = "partial (budget exhausted)"
            self.firsts.setdefault("partial", step.n)
        elif step.served_model != step.requested_model:
            self.status = f"downgraded to {step.served_model}"
            self.firsts.setdefault("downgrade", step.n)
        elif step.budget in ("warn", "downgrade", "compress"):
            self.status = "warn"
            self.firsts.setdefault("warn", step.n)
        if step.compressed_tokens:
            self.firsts.setdefault("compress", step.n)


@dataclass(slots=True)
class DemoResult:
    views: dict[str, AgentView]
    ledger_total: Decimal
    ledger_events: int


def run_demo(workdir: Path, *, steps: int, console: Console) -> DemoResult:
    try:
        import anthropic
        import openai
    except ImportError:
        raise FiscusError("the demo drives the official SDKs: pip install 'fiscus[sdk]'") from None
    from fiscus.emulator import EmulatorConfig, run_in_thread
    from fiscus.gateway.app import run_gateway_in_thread
    from fiscus.keys import KeyClaims, KeyRing, open_key_store

    _fresh(workdir)
    _price_preface(console)
    policy = workdir / "policy.yaml"
    policy.write_text(resources.files("fiscus.demo").joinpath("policy.yaml").read_text(encoding="utf-8"))
    with ExitStack() as stack:
        upstream = stack.enter_context(run_in_thread(EmulatorConfig(reply_tokens=120, latency_ms=2)))
        config = _config(workdir, policy, upstream)
        keyring = KeyRing(open_key_store(config.keys))
        stack.callback(keyring.store.close)
        keys = {
            "research": keyring.create(agent="researcher", team="research", environment="demo")[0],
            "triage": keyring.create(agent="triage", team="support", environment="demo")[0],
            # The debate's two agents share a key that may claim either (x-fiscus-agent), nothing else.
            "debate": keyring.create(
                agent="planner",
                team="ops",
                environment="demo",
                workflow="debate",
                claims=KeyClaims.of({"agent": ["planner", "critic"]}),
            )[0],
        }
        console.print(
            f"[bold]Emulated providers[/] at {upstream}; ledger, budgets and keys in [bold]{workdir}[/] (SQLite)."
        )
        gateway = stack.enter_context(run_gateway_in_thread(config, keyring=keyring))
        console.print(f"[bold]Gateway[/] at {gateway}; agents call it through the official openai/anthropic SDKs.\n")
        fleets = {
            "researcher": researcher(anthropic.Anthropic(base_url=gateway, api_key=keys["research"]), steps),
            "triage": triage(openai.OpenAI(base_url=f"{gateway}/v1", api_key=keys["triage"]), steps),
            "debate": debate(anthropic.Anthropic(base_url=gateway, api_key=keys["debate"]), steps),
        }
        views = _drive(fleets, steps, console)
    _story(views, console)
    total, events = _report(config, console)
    return DemoResult(views=views, ledger_total=total, ledger_events=events)


def _fresh(workdir: Path) -> None:
    if workdir.exists():
        for name in ("ledger.db", "budgets.db", "keys.db", "policy.yaml"):
            for suffix in ("", "-wal", "-shm"):
                (workdir / f"{name}{suffix}").unlink(missing_ok=True)
        shutil.rmtree(workdir / "spill", ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)


def _config(workdir: Path, policy: Path, upstream: str) -> FiscusConfig:
    providers = {
        "openai": ProviderConfig(
            kind="openai", base_url=f"{upstream}/v1", api_key_env="FISCUS_DEMO_KEY", models=["gpt-*"]
        ),
        "anthropic": ProviderConfig(
            kind="anthropic", base_url=f"{upstream}/v1", api_key_env="FISCUS_DEMO_KEY", models=["claude-*"]
        ),
    }
    import os

    os.environ.setdefault("FISCUS_DEMO_KEY", "emulator-key")
    return FiscusConfig(
        ledger=f"sqlite:///{workdir / 'ledger.db'}",
        budget_store=f"sqlite:///{workdir / 'budgets.db'}",
        keys=f"sqlite:///{workdir / 'keys.db'}",
        policy=policy,
        providers=providers,
        # The policy's `slack` alerts, written to the log here: a demo posts nowhere.
        notify=NotifyConfig(channels={"slack": ChannelConfig(kind="log")}),
    )


def _price_preface(console: Console) -> None:
    """The seeds' caching example, priced by the catalogue: why cache placement matters."""
    catalogue = PriceCatalogue()
    at = datetime.now(UTC)
    plain = catalogue.price(Usage(input_tokens=50_000), provider="anthropic", model="claude-sonnet-4-6", at=at)
    cached = catalogue.price(Usage(cache_read_tokens=50_000), provider="anthropic", model="claude-sonnet-4-6", at=at)
    table = Table(title="A 50,000-token system prompt sent 1,000 times a day to claude-sonnet-4-6")
    table.add_column("sent as")
    table.add_column("per call", justify="right")
    table.add_column("per day", justify="right")
    table.add_row("plain input", usd(plain.total), usd((plain * 1000).total))
    table.add_row("cache reads", usd(cached.total), usd((cached * 1000).total))
    console.print(table)
    console.print()


def _drive(fleets: dict[str, Iterator[Step]], steps: int, console: Console) -> dict[str, AgentView]:
    views: dict[str, AgentView] = {}
    columns = (
        TextColumn("{task.description:<11}"),
        BarColumn(bar_width=24),
        TextColumn("step {task.completed:>2.0f}/{task.total:.0f}"),
        TextColumn("{task.fields[spent]:>10}"),
        TextColumn("{task.fields[model]:<18}"),
        TextColumn("{task.fields[status]}"),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        tasks = {name: progress.add_task(name, total=steps, spent="$0.00", model="", status="") for name in fleets}
        live = dict(fleets)
        while live:
            for name, steps_iter in list(live.items()):
                step = next(steps_iter, None)
                if step is None:
                    del live[name]
                    continue
                view = views.setdefault(step.agent if name != "debate" else "debate", AgentView())
                view.add(step)
                progress.update(
                    tasks[name],
                    completed=step.n,
                    spent=usd(view.spent),
                    model=step.served_model,
                    status=view.status,
                )
    return views


def _story(views: dict[str, AgentView], console: Console) -> None:
    console.print()
    for name, view in views.items():
        if not view.firsts:
            console.print(f"[bold]{name}[/]: stayed within budget ({view.steps} steps, {usd(view.spent)}).")
            continue
        moments = ", ".join(f"{what} at step {n}" for what, n in sorted(view.firsts.items(), key=lambda kv: kv[1]))
        console.print(f"[bold]{name}[/]: {moments}; {usd(view.spent)} over {view.steps} steps.")
    console.print()


def _report(config: FiscusConfig, console: Console) -> tuple[Decimal, int]:
    from fiscus.ledger import SpendQuery, open_ledger
    from fiscus.reports.spend import SpendReport

    query = SpendQuery(by=("agent", "model"))
    with open_ledger(config.ledger) as ledger:
        rows = ledger.spend(query)
    report = SpendReport(query=query, rows=rows, generated_at=datetime.now(UTC))
    console.print(report.to_table())
    again = f"{_command()} report --ledger {config.ledger} --by agent,model"
    console.print(f"\nThe same figures any time: [bold]{again}[/]")
    forecast = f"{_command()} forecast --ledger {config.ledger} --by agent --runs-per-day 100"
    console.print(f"Cost per run at P50 / P95 and a month at 100 runs a day: [bold]{forecast}[/]")
    return report.totals.total_usd, report.totals.requests


def _command() -> str:
    """How the user can run fiscus again: the path they ran it by (e.g. .venv/bin/fiscus), or plain `fiscus`."""
    import os
    import sys

    argv0 = sys.argv[0] if sys.argv else ""
    if os.sep in argv0 and os.path.basename(argv0) == "fiscus":
        relative = os.path.relpath(argv0)
        return relative if not relative.startswith("..") else argv0
    return "fiscus"
