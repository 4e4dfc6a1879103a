"""`fiscus budgets status` shows the circuit breakers other processes recorded, below the budgets and in JSON."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from fiscus.cli.main import main
from fiscus.config import load_config

POLICY = """
budgets:
  - name: org-monthly
    window: month
    limit: {usd: 50}
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "policy.yaml").write_text(POLICY, encoding="utf-8")
    path = tmp_path / "fiscus.yaml"
    path.write_text(
        f"budget_store: sqlite:///{tmp_path / 'budgets.db'}\npolicy: policy.yaml\n"
        "guards: {breakers: {per_agent: {cooldown_s: 600}, agents: {critic: {cooldown_s: 0}}}}\n",
        encoding="utf-8",
    )
    return path


def test_no_breaker_has_tripped(capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path) -> None:
    code, out, err = run(capsys, "budgets", "status", "--config", str(config))
    assert code == 0 and err == "" and "org-monthly" in out
    where = f"sqlite:///{tmp_path / 'breakers.db'}"
    assert f"circuit breakers: none has tripped ({where})" in " ".join(out.split())  # a long path may wrap
    code, out, _ = run(capsys, "budgets", "status", "--config", str(config), "--json")
    assert code == 0 and json.loads(out)["breakers"] == []


def test_breakers_of_another_process_show_below_the_budgets(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    settings = load_config(config)
    gateway = settings.guards.breaker_registry(budget_store=settings.budget_store)  # a gateway worker, say
    try:
        before = time.time()
        gateway.trip("researcher", "spend_rate", "spend this hour $9 is above 3 × the median hourly spend $2")
        gateway.trip("critic", "loop", "ping-pong with writer")  # no cooldown: half-open at once
        gateway.trip(None, "budget_exhausted", "org-monthly exhausted")
    finally:
        gateway.close()

    code, out, err = run(capsys, "budgets", "status", "--config", str(config))
    assert code == 0 and err == ""
    lines = out.splitlines()
    # piped: every row whole on its line, the reason too
    assert any("spend_rate: spend this hour $9 is above 3 × the median hourly spend $2" in line for line in lines)
    budgets_at = next(i for i, line in enumerate(lines) if "org-monthly" in line and "$50" in line)
    title_at = next(i for i, line in enumerate(lines) if "circuit breakers" in line)
    assert budgets_at < title_at
    cells = [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines[title_at:] if line.startswith("│")]
    rows = {row[0]: row for row in cells if row[0]}  # a long reason wraps onto rows without a name
    assert list(rows) == ["global", "agent:critic", "agent:researcher"]
    assert rows["global"][1:2] == ["open"] and rows["global"][3].startswith("budget_exhausted: org-monthly")
    assert rows["agent:researcher"][1] == "open" and rows["agent:researcher"][3].startswith("spend_rate: spend this")
    assert rows["agent:critic"][1] == "half_open" and rows["agent:critic"][4] == "-"  # its cooldown is over

    code, out, _ = run(capsys, "budgets", "status", "--config", str(config), "--json")
    shown = {row["scope"]: row for row in json.loads(out)["breakers"]}
    assert code == 0 and list(shown) == ["global", "agent:critic", "agent:researcher"]
    assert shown["agent:researcher"]["state"] == "open" and shown["agent:researcher"]["reason"] == "spend_rate"
    assert shown["agent:researcher"]["reopens_at"] == pytest.approx(shown["agent:researcher"]["since"] + 600)
    assert shown["agent:researcher"]["since"] >= before and shown["agent:researcher"]["trips"] == 1
    assert shown["agent:critic"]["state"] == "half_open" and shown["global"]["state"] == "open"


def test_a_closed_breaker_shows_closed(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    settings = load_config(config)
    worker = settings.guards.breaker_registry(budget_store=settings.budget_store)
    try:
        worker.trip("critic", "loop", "ping-pong with writer")
        assert worker.check("critic") is None  # half-open: the probe goes out …
        worker.record("critic", ok=True)  # … and succeeds
    finally:
        worker.close()
    code, out, _ = run(capsys, "budgets", "status", "--config", str(config), "--json")
    (critic,) = json.loads(out)["breakers"]
    assert code == 0 and (critic["scope"], critic["state"], critic["reason"], critic["trips"]) == (
        "agent:critic",
        "closed",
        None,
        1,
    )
