"""`fiscus model` end to end: the table, --json, --sweep (how the month depends on calls per request),
--policy-out, the seed and the one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fiscus.cli.main import main
from fiscus.policy.load import load_policy

SPEC = """\
prices_at: 2026-12-01
samples: 50
agents:
  researcher:
    task_class: research
    model: claude-sonnet-4-6
    user_input: 50000
    context: none
  triage:
    routing: {claude-haiku-4-5: 70, claude-sonnet-4-6: 20, claude-opus-4-6: 10}
    steps: {p50: 3, p95: 8}
    tool_results: {p50: 1500, p95: 6000}
    output: {p50: 200, p95: 800}
workflows:
  research: {agent: researcher, runs_per_day: 100}
  support: {agent: triage, runs_per_day: 2000}
"""


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "workload.yaml"
    path.write_text(SPEC, encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_sweep_and_policy(capsys: pytest.CaptureFixture[str], spec: Path, tmp_path: Path) -> None:
    policy = tmp_path / "budgets.yaml"
    code, out, err = run(
        capsys, "model", str(spec), "--json", "--sweep", "researcher.steps=1,5,7", "--policy-out", str(policy)
    )
    assert code == 0, err
    data = json.loads(out)
    research = next(w for w in data["workflows"] if w["name"] == "research")
    assert research["month_per_call_usd"] == "450"
    assert research["projection"]["p50_usd"] == "450"
    triage = next(t for t in data["task_classes"] if t["name"] == "triage")
    assert triage["weighted_input_mtok_usd"] == "1.8"
    months = [p["workflows"]["research"]["month_p50_usd"] for p in data["sweep"]["points"]]
    assert months == ["450", "2250", "3150"]
    assert data["sweep"]["setting"] == "agents.researcher.steps"
    budgets = {b.name: b for b in load_policy(policy).budgets}
    assert budgets["workflow-research-monthly"].limits.nanos == 450 * 10**9
    assert [str(t.at) for t in budgets["workflow-support-monthly"].thresholds] == ["0.5", "0.8", "1.0"]


def test_the_seed_decides_the_figures(capsys: pytest.CaptureFixture[str], spec: Path) -> None:
    outs = []
    for seed in ("1", "1", "2"):
        code, out, _ = run(capsys, "model", str(spec), "--json", "--seed", seed, "--samples", "30")
        assert code == 0
        outs.append(json.loads(out)["workflows"][1]["per_run"])
    assert outs[0] == outs[1] != outs[2]


def test_table(capsys: pytest.CaptureFixture[str], spec: Path) -> None:
    code, out, _ = run(capsys, "model", str(spec), "--sweep", "researcher.steps=2,4")
    assert code == 0
    for text in ("workflows: per run", "month per call", "$450.00", "task classes", "$1.8", "sweep of", "$1800.00"):
        assert text in out, text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("steps: {p50: 3, p95: 8}", "steps: {p50: 9, p95: 8}"), "agents.triage.steps: Value error, p95 must be"),
        (("runs_per_day: 100", "runs_per_day: -1"), "workflows.research.runs_per_day: Input should be greater"),
        (("model: claude-sonnet-4-6", "model: claude-sonet-4-6"), "agents.researcher.model: unknown model"),
        (("context: none", "context: all"), "agents.researcher.context: Value error, unknown context 'all'"),
        (("samples: 50", "samples: [50]"), "samples: Input should be a valid integer"),
    ],
)
def test_bad_spec_is_one_line_naming_the_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(SPEC.replace(*change), encoding="utf-8")
    code, out, err = run(capsys, "model", str(path))
    assert code == 2 and out == ""
    assert err.startswith(f"fiscus: error: {path}: ") and message in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sweep", "steps"], "expected AGENT.FIELD=V1,V2"),
        (["--sweep", "nobody.steps=1"], "agents.nobody: no such section to change"),
        (["--at", "soon"], "--at 'soon': expected an ISO date"),
        (["--policy-by", "team"], "--policy-by 'team': use workflow or task_class"),
    ],
)
def test_bad_options(capsys: pytest.CaptureFixture[str], spec: Path, args: list[str], message: str) -> None:
    code, _, err = run(capsys, "model", str(spec), *args)
    assert code == 2 and message in err and err.count("\n") == 1


def test_missing_spec(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "model", str(tmp_path / "none.yaml"))
    assert code == 2 and "none.yaml: no such file" in err
