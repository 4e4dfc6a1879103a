"""`fiscus alerts check`: cron-friendly, once per window across runs sharing the budget store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fiscus.cli.main import main
from fiscus.ledger import open_ledger

from .test_alerts import call


def test_check_sends_once_per_window(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime.now(UTC)
    ledger = f"sqlite:///{tmp_path}/ledger.db"
    with open_ledger(ledger) as led:
        led.append([call(now - timedelta(hours=2 + h), "1", workflow="research") for h in range(12)])
        led.append([call(now - timedelta(minutes=1), "9", workflow="research")])
    (tmp_path / "policy.yaml").write_text("owners: {workflow: {research: rita@example.com}}\n", encoding="utf-8")
    config = tmp_path / "fiscus.yaml"
    config.write_text(
        f"ledger: {ledger}\nbudget_store: sqlite:///{tmp_path}/budgets.db\npolicy: policy.yaml\n"
        "notify: {channels: {ops: {kind: log}}, default: [ops]}\n",
        encoding="utf-8",
    )
    assert main(["alerts", "check", "--config", str(config), "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "critical" in dry and "sent" not in dry
    assert main(["alerts", "check", "--config", str(config)]) == 0
    first = capsys.readouterr().out.splitlines()
    assert len(first) == 2 and all(line.startswith("sent  critical  hourly_spend") for line in first)
    assert "[owner rita@example.com]" in first[1]
    assert main(["alerts", "check", "--config", str(config), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert [(a["signal"], a["level"], a["sent"]) for a in again] == [("hourly_spend", "critical", False)] * 2


def test_bad_config_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", "check", "--config", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fiscus: error:") and len(err.splitlines()) == 1
