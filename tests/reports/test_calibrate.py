"""Calibration: the spec's sessions against the ledger's for the same task classes, and the assumption that is off
(steps, growth, cache hit, output length) named with the spec fields to revisit; end to end through a real SQLite
ledger with `fiscus model --against`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fiscus.attribution import Attribution
from fiscus.cli.main import main
from fiscus.events.cost_event import CostEvent
from fiscus.ledger import open_ledger
from fiscus.pricing import PriceCatalogue
from fiscus.reports.model import model_workload, parse_spec
from fiscus.reports.model.calibrate import calibrate
from fiscus.usage.model import Usage

CATALOGUE = PriceCatalogue()
NOW = datetime.now(UTC)
SPEC: dict[str, Any] = {
    "prices_at": "2026-12-01",
    "samples": 30,
    "agents": {
        "researcher": {
            "task_class": "research",
            "model": "claude-sonnet-4-6",
            "steps": 10,
            "tool_results": 2000,
            "output": 300,
        },
        "triage": {"model": "claude-haiku-4-5", "user_input": 800, "output": 100},
    },
    "workflows": {
        "scan": {"agent": "researcher", "runs_per_day": 50},
        "tickets": {"agent": "triage", "runs_per_day": 9},
    },
}


def staging(sessions: int = 20, *, calls: int = 14, output: int = 300, cache_read: int = 0) -> list[CostEvent]:
    """Research sessions as the spec describes them, but `calls` long, `output` tokens a call."""
    events = []
    for s in range(sessions):
        for k in range(1, calls + 1):
            sent = 2000 * k + output * (k - 1)  # each step carries the last one's input and output
            read = min(cache_read, sent)
            events.append(
                CostEvent(
                    id=f"s{s}-{k}",
                    timestamp=NOW - timedelta(hours=1, seconds=s * 100 - k),
                    provider="anthropic",
                    requested_model="claude-sonnet-4-6",
                    served_model="claude-sonnet-4-6",
                    usage=Usage(input_tokens=sent - read, cache_read_tokens=read, output_tokens=output),
                    cost=CATALOGUE.price(
                        Usage(input_tokens=sent - read, cache_read_tokens=read, output_tokens=output),
                        provider="anthropic",
                        model="claude-sonnet-4-6",
                    ),
                    attribution=Attribution(task_class="research", session=f"run-{s}", environment="staging"),
                )
            )
    return events


def calibrated(events: list[CostEvent]) -> dict[str, Any]:
    result = model_workload(parse_spec(SPEC), CATALOGUE)
    return {c.task_class: c for c in calibrate(result, events)}


def test_longer_sessions_than_modelled_are_the_steps_assumption() -> None:
    research = calibrated(staging(calls=14))["research"]
    checks = {c.assumption: c for c in research.checks}
    assert checks["steps"].off and checks["steps"].deviation == Decimal("0.4")  # 14 calls, not 10
    assert not checks["growth"].off and checks["growth"].recorded == 2300  # 2,000 added + 300 carried output
    assert not checks["output"].off and not checks["cache_hit"].off
    assert research.verdict.startswith("research: steps is off — spec 10 calls a session, staging 14 calls")
    assert "+40 %" in research.verdict and "agents.researcher.steps / agents.researcher.retries" in research.verdict


def test_the_worst_assumption_is_named_and_a_missing_task_class_said() -> None:
    found = calibrated(staging(calls=12, output=900))
    research = found["research"]
    assert {c.assumption for c in research.checks if c.off} == {"output", "growth"}
    assert "output is off — spec 300 output tokens a call, staging 900" in research.verdict  # +200 %, the worst
    assert found["triage"].recorded is None and "no sessions recorded" in found["triage"].verdict


def test_a_cache_the_spec_does_not_assume() -> None:
    research = calibrated(staging(calls=10, cache_read=4000))["research"]
    (off,) = [c for c in research.checks if c.off]
    assert off.assumption == "cache_hit" and off.modelled == 0 and off.recorded > Decimal("0.1")
    assert "agents.researcher.cache" in research.verdict and "points" in research.verdict


def test_matching_staging_passes() -> None:
    research = calibrated(staging(calls=10))["research"]
    assert not any(c.off for c in research.checks)
    assert research.verdict == "research: the spec matches staging within the tolerance"


def test_cli_against_a_ledger(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import yaml

    spec = tmp_path / "workload.yaml"
    spec.write_text(yaml.safe_dump(SPEC), encoding="utf-8")
    url = f"sqlite:///{tmp_path}/ledger.db"
    old = staging(sessions=3, calls=30)
    for event in old:
        event.timestamp = NOW - timedelta(days=20)
    with open_ledger(url) as ledger:
        ledger.append([*staging(calls=14), *old])
    args = ["model", str(spec), "--against", url, "--since", "7d", "--where", "environment=staging"]
    assert main([*args, "--json"]) == 0
    (research, triage) = json.loads(capsys.readouterr().out)["calibration"]
    assert research["recorded"]["sessions"] == 20 and research["recorded"]["calls"] == {"p50": 14, "p95": 14}
    assert research["off"] == ["steps"] and triage["recorded"] is None
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "calibration: the spec against staging" in out and "research: steps is off" in out
    assert main([*args, "--tolerance", "0.5"]) == 0
    assert "research: the spec matches staging" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "7d"], "--since, --until and --where go with --against LEDGER"),
        (["--against", "sqlite:///nowhere/ledger.db"], "no ledger at nowhere/ledger.db"),
        (["--against", "sqlite:///:memory:", "--since", "soon"], "--since 'soon': expected a span"),
    ],
)
def test_cli_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str) -> None:
    import yaml

    spec = tmp_path / "workload.yaml"
    spec.write_text(yaml.safe_dump(SPEC), encoding="utf-8")
    assert main(["model", str(spec), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
