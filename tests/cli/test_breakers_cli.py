"""`fiscus breakers list|reset` on the state every worker shares: the table and JSON, a reset that closes the
breaker for the others, and one readable line for a name no process has seen or a store that shares nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fiscus.cli.main import main
from fiscus.config import load_config
from fiscus.guards import BreakerState


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "fiscus.yaml"
    path.write_text(f"budget_store: sqlite:///{tmp_path}/budget.db\nledger: sqlite:///{tmp_path}/ledger.db\n")
    return path


def test_list_and_reset(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    worker = load_config(config).guards.breaker_registry(budget_store=load_config(config).budget_store)
    worker.trip("researcher", "loop", "ping-pong with the critic")
    assert main(["breakers", "list", "--config", str(config), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["agent:researcher"]["state"] == "open" and rows["agent:researcher"]["reason"] == "loop"
    assert main(["breakers", "list", "--config", str(config)]) == 0
    table = capsys.readouterr().out
    assert "agent:researcher" in table and "ping-pong with the critic" in table

    assert main(["breakers", "reset", "agent:researcher", "--config", str(config)]) == 0
    assert "reset" in capsys.readouterr().out
    worker.sync()  # the worker takes the reset at its next refresh
    assert worker.breaker("agent:researcher").state is BreakerState.CLOSED
    assert worker.check("researcher") is None
    worker.close()


def test_bad_input_is_one_line(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["breakers", "reset", "agent:nobody", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fiscus: error: no breaker named 'agent:nobody'") and "\n" not in err
    assert main(["breakers", "list", "--state", "memory://"]) == 2
    err = capsys.readouterr().err.strip()
    assert "memory://" in err and "\n" not in err
    assert main(["breakers", "list", "--state", "etcd://x"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
