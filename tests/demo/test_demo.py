"""The README's main job, end to end: emulator, gateway on SQLite, the official SDKs, the budgets' tiers."""

import io
from pathlib import Path

from rich.console import Console

from fiscus.demo.run import run_demo


def test_demo_walks_every_tier_and_the_ledger_adds_up(tmp_path: Path) -> None:
    out = io.StringIO()
    result = run_demo(tmp_path / "demo", steps=30, console=Console(file=out, width=120))
    text = out.getvalue()
    researcher = result.views["researcher"]
    # Context grows every step: warn, then one tier down with compression, then an honest partial answer.
    assert researcher.firsts["warn"] < researcher.firsts["downgrade"] < researcher.firsts["partial"]
    assert "compress" in researcher.firsts
    # The cheap triage agent never comes near its budget.
    assert result.views["triage"].firsts == {}
    # The two agents replying to each other are stopped as a loop long before their budget runs out.
    assert result.views["debate"].firsts.get("loop detected", 99) <= 6
    # Every call is one ledger event, and the ledger's total is what the gateway told each client it cost.
    assert result.ledger_events == 90
    assert result.ledger_total == sum(view.spent for view in result.views.values())
    assert "researcher" in text and "Total" in text
