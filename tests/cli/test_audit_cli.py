"""`fiscus audit verify|export` end to end: exit codes, findings named, the export's fields and window."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from fiscus.attribution import Attribution
from fiscus.audit import FIELDS
from fiscus.cli.main import main
from fiscus.events.cost_event import CostEvent
from fiscus.events.policy_event import PolicyEvent
from fiscus.ledger import open_ledger
from fiscus.pricing.cost import Cost
from fiscus.usage.model import Usage

NOW = datetime.now(UTC)


def _event(n: int, hours_ago: float) -> CostEvent:
    return CostEvent(
        id=f"e{n}",
        timestamp=NOW - timedelta(hours=hours_ago),
        provider="openai",
        requested_model="gpt-4.1",
        served_model="gpt-4.1-mini",
        usage=Usage(input_tokens=1000, cache_read_tokens=200, output_tokens=100),
        cost=Cost(input=Decimal("0.002"), output=Decimal("0.0004")),
        attribution=Attribution(team="growth", agent="triage", user="u-7"),
        error="upstream said: the prompt was ..." if n == 2 else None,
        decision="downgrade",
        tags={"override": "b:team", "note": "caller text"},
        policy_version="0123456789abcdef",
    )


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/ledger.db"
    with open_ledger(url) as ledger:
        ledger.record_policy(PolicyEvent("0123456789abcdef", source="policy.yaml", timestamp=NOW - timedelta(hours=30)))
        ledger.append([_event(1, 48), _event(2, 10), _event(3, 1)])
    return url


def test_verify_says_ok_and_exits_0(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "verify", "--ledger", url]) == 0
    assert "ok: 4 rows in 1 chain(s) verified" in capsys.readouterr().out


def test_verify_names_the_edited_row_and_exits_1(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "verify", "--ledger", url, "--json"]) == 0
    anchors = tmp_path / "anchors.json"
    anchors.write_text(capsys.readouterr().out, encoding="utf-8")
    conn = sqlite3.connect(tmp_path / "ledger.db")
    with conn:
        conn.execute("UPDATE cost_events SET output_usd = '0' WHERE id = 'e2'")
    conn.close()
    assert main(["audit", "verify", "--ledger", url, "--anchors", str(anchors)]) == 1
    out = capsys.readouterr().out
    assert "edited: event e2" in out and "TAMPERED: 1 finding(s)" in out
    assert main(["audit", "verify", "--ledger", url, "--json"]) == 1
    (finding,) = json.loads(capsys.readouterr().out)["findings"]
    assert (finding["kind"], finding["row_id"], finding["seq"]) == ("edited", "e2", 3)


def test_export_writes_the_window_without_free_text(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "export", "--ledger", url, "--since", "36h"]) == 0
    out = capsys.readouterr().out
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == list(FIELDS)
    assert [(r["record"], r["id"]) for r in rows] == [("policy_start", rows[0]["id"]), ("call", "e2"), ("call", "e3")]
    call = rows[1]
    assert (call["team"], call["user"], call["served_model"], call["decision"]) == ("growth", "u-7", "gpt-4.1-mini",
                                                                                   "downgrade")  # fmt: skip
    assert (call["cost_usd"], call["input_tokens"], call["override"]) == ("0.0024", "1000", "b:team")
    assert call["policy_version"] == "0123456789abcdef"
    assert "prompt" not in out and "caller text" not in out


def test_export_as_json_lines_to_a_file(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "audit.jsonl"
    assert main(["audit", "export", "--ledger", url, "--json", "-o", str(target)]) == 0
    assert "4 records written" in capsys.readouterr().err
    records = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [r["record"] for r in records] == ["call", "policy_start", "call", "call"]  # in time order
    assert [r["id"] for r in records if r["record"] == "call"] == ["e1", "e2", "e3"]
    assert records[0]["usage_estimated"] is False and records[1]["policy_source"] == "policy.yaml"


def test_bad_arguments_are_one_line_and_exit_2(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "verify", "--ledger", url, "--anchors", str(tmp_path / "missing.json")]) == 2
    assert main(["audit", "export", "--ledger", url, "--since", "yesterday"]) == 2
    assert main(["audit", "export", "--ledger", url, "-o", str(tmp_path / "no" / "such" / "dir.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("fiscus: error: ") for line in err)
