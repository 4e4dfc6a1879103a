"""`fiscus report` end to end through `fiscus.cli.main.main`: output forms, exit codes, one-line errors."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from fiscus.attribution import Attribution
from fiscus.cli.main import main
from fiscus.events.cost_event import CostEvent
from fiscus.ledger import open_ledger
from fiscus.pricing.cost import Cost
from fiscus.usage.model import Usage

NOW = datetime.now(UTC)


def _event(n: int, *, hours_ago: float, cost: str, **dims: str) -> CostEvent:
    return CostEvent(
        id=f"e{n}",
        timestamp=NOW - timedelta(hours=hours_ago),
        provider="openai",
        requested_model="gpt-4.1",
        served_model="gpt-4.1-mini" if dims.get("agent") == "triage" else "gpt-4.1",
        usage=Usage(input_tokens=1000, cache_read_tokens=1000, output_tokens=100),
        cost=Cost(input=Decimal(cost)),
        attribution=Attribution(**dims),
    )


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/ledger.db"
    with open_ledger(url) as ledger:
        ledger.append(
            [
                _event(1, hours_ago=1, cost="0.000000001", team="growth", agent="triage"),
                _event(2, hours_ago=2, cost="0.5", team="growth", agent="writer", outcome="published"),
                _event(3, hours_ago=30, cost="2", team="search", agent="triage"),
                _event(4, hours_ago=24 * 10, cost="7", team="search", agent="writer"),
            ]
        )
    return url


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_table_with_totals(capsys: pytest.CaptureFixture[str], ledger_url: str) -> None:
    code, out, err = run(capsys, "report", "--ledger", ledger_url, "--by", "team")
    assert code == 0, err
    assert "growth" in out and "search" in out and "Total" in out
    assert "$9.500000" in out or "$9.50" in out
    assert "published $0.50" in out


def test_json_window_and_grouping(capsys: pytest.CaptureFixture[str], ledger_url: str) -> None:
    code, out, _ = run(capsys, "report", "--ledger", ledger_url, "--since", "7d", "--by", "team,model", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["by"] == ["team", "served_model"]
    groups = {(r["group"]["team"], r["group"]["served_model"]): r["total_usd"] for r in data["rows"]}
    assert groups == {
        ("search", "gpt-4.1-mini"): "2",
        ("growth", "gpt-4.1"): "0.5",
        ("growth", "gpt-4.1-mini"): "0.000000001",
    }
    assert data["totals"]["total_usd"] == "2.500000001"
    assert data["totals"]["cache_hit_rate"] == "0.5"


def test_where_and_until(capsys: pytest.CaptureFixture[str], ledger_url: str) -> None:
    until = (NOW - timedelta(hours=1, minutes=30)).isoformat()
    code, out, _ = run(capsys, "report", "--ledger", ledger_url, "--where", "team=growth", "--until", until, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["totals"]["requests"] == 1
    assert data["totals"]["total_usd"] == "0.5"
    assert data["where"] == {"team": "growth"}


def test_csv_chargeback(capsys: pytest.CaptureFixture[str], ledger_url: str) -> None:
    code, out, _ = run(capsys, "report", "--ledger", ledger_url, "--by", "agent", "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["agent"]: r["total_usd"] for r in rows} == {"writer": "7.5", "triage": "2.000000001"}
    assert rows[0]["outcome_published"] == "1" and rows[0]["cost_per_published_usd"] == "7.5"


def test_default_ledger_comes_from_config(
    capsys: pytest.CaptureFixture[str], ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "fiscus.yaml"
    config.write_text(f"ledger: {ledger_url}\n")
    code, out, _ = run(capsys, "report", "--config", str(config), "--json")
    assert code == 0 and json.loads(out)["totals"]["requests"] == 4
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "report")  # built-in default: sqlite:///.fiscus/ledger.db, not there yet
    assert code == 2
    assert err.startswith("fiscus: error: no ledger at .fiscus/ledger.db (nothing recorded yet")
    assert not (tmp_path / ".fiscus").exists()


def test_empty_window(capsys: pytest.CaptureFixture[str], ledger_url: str) -> None:
    code, out, _ = run(capsys, "report", "--ledger", ledger_url, "--since", "30m")
    assert code == 0 and "No spend recorded" in out
    code, out, _ = run(capsys, "report", "--ledger", ledger_url, "--since", "30m", "--csv")
    assert code == 0 and out.startswith("requests,") and len(out.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--by", "colour"], "unknown dimension 'colour'"),
        (["--where", "colour=red"], "unknown dimension 'colour'"),
        (["--where", "team"], "expected dimension=value"),
        (["--since", "3 days"], "--since '3 days'"),
        (["--until", "tomorrow"], "--until 'tomorrow'"),
        (["--since", "1d", "--until", "2d"], "--since must be earlier than --until"),
        (["--json", "--csv"], "exclude each other"),
        (["--ledger", "mysql://x/y"], "unsupported ledger URL"),
        (["--ledger", "postgresql://nobody:pw@127.0.0.1:1/x?connect_timeout=1"], "127.0.0.1"),
    ],
)
def test_errors_are_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], ledger_url: str, args: list[str], message: str
) -> None:
    if "--ledger" not in args:
        args = ["--ledger", ledger_url, *args]
    code, out, err = run(capsys, "report", *args)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("fiscus: error: ")
    assert message in err
    assert "Traceback" not in err
