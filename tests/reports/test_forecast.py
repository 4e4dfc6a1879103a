"""The pre-launch cost model: runs from sessions, nearest-rank P50 / P95 in exact decimals, projections over a
volume, the policy it writes (which loads), and `fiscus forecast` end to end with one-line errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from fiscus.attribution import Attribution
from fiscus.cli.main import main
from fiscus.events.cost_event import CostEvent
from fiscus.ledger import open_ledger
from fiscus.policy.load import load_policy
from fiscus.pricing.cost import Cost
from fiscus.reports.forecast import ForecastError, budget_policy, forecast, group_runs, nearest_rank
from fiscus.usage.model import Usage

NOW = datetime.now(UTC)


def call(n: int, cost: str, *, session: str | None = None, tokens: int = 100, **dims: str) -> CostEvent:
    return CostEvent(
        id=f"e{n}",
        timestamp=NOW - timedelta(minutes=n),
        provider="anthropic",
        requested_model="claude-sonnet-4-6",
        served_model="claude-sonnet-4-6",
        usage=Usage(input_tokens=tokens, output_tokens=10),
        cost=Cost(input=Decimal(cost)),
        attribution=Attribution(session=session, **dims),
    )


def research_runs(count: int = 20) -> list[CostEvent]:
    """`count` research sessions of three calls each: session i costs 3 × i cents; plus one-off triage calls."""
    events = []
    for i in range(1, count + 1):
        events += [
            call(100 * i + step, f"0.0{i}" if i < 10 else f"0.{i}", session=f"r{i}", task_class="research")
            for step in range(3)
        ]
    events += [call(9000 + i, "0.001", task_class="triage") for i in range(5)]
    return events


def test_nearest_rank() -> None:
    values = list(range(1, 21))
    assert nearest_rank(values, 0.5) == 10
    assert nearest_rank(values, 0.95) == 19
    assert nearest_rank([7], 0.95) == 7
    with pytest.raises(ValueError):
        nearest_rank([], 0.5)


def test_a_run_is_a_session_and_a_lone_call_is_its_own_run() -> None:
    grouped = group_runs(research_runs(), "task_class")
    assert sorted(len(runs) for runs in grouped.values()) == [5, 20]
    assert all(run.calls == 3 and run.tokens == 330 for run in grouped["research"])
    assert sorted(run.cost for run in grouped["research"])[0] == Decimal("0.03")


def test_percentiles_and_projection_are_exact() -> None:
    result = forecast(research_runs(), runs_per_day=Decimal(100), days=30)
    research, triage = result.groups
    assert research.group == "research" and research.runs == 20 and research.calls == 60
    assert research.cost_p50 == Decimal("0.30")  # the 10th of 20 runs: 3 × 0.10
    assert research.cost_p95 == Decimal("0.57")  # the 19th: 3 × 0.19
    assert research.cost_mean == Decimal("0.315")
    assert research.period_p50 == Decimal("900") and research.period_p95 == Decimal("1710")
    assert (research.calls_p50, research.calls_p95, research.tokens_p95) == (3, 3, 330)
    assert triage.cost_p95 == Decimal("0.001") and triage.period_p95 == Decimal("3")
    assert result.notes == ["triage: only 5 run(s) recorded; P95 is not reliable below 20"]


def test_volume_per_group_and_unknown_groups() -> None:
    result = forecast(research_runs(), runs_per_day={"research": Decimal(10)})
    research, triage = result.groups
    assert research.period_p95 == Decimal("171") and triage.period_p95 is None
    with pytest.raises(ForecastError, match="no recorded runs for task_class=support"):
        forecast(research_runs(), runs_per_day={"support": Decimal(1)})
    with pytest.raises(ForecastError, match="cannot group runs by 'session'"):
        forecast(research_runs(), by="session")


def test_the_policy_it_writes_loads_with_a_budget_per_group(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(budget_policy(forecast(research_runs(), runs_per_day=Decimal("33.3"))), encoding="utf-8")
    budgets = {b.name: b for b in load_policy(path).budgets}
    research = budgets["task_class-research-monthly"]
    assert research.scope == (("task_class", "research"),)
    assert research.window.unit == "month"
    assert research.limits.nanos == 569_430_000_000  # 0.57 × 33.3 × 30 = 569.43
    assert budgets["task_class-triage-monthly"].limits.nanos == 1_000_000_000  # 0.999, rounded up to the cent
    with pytest.raises(ForecastError, match="give the expected volume"):
        budget_policy(forecast(research_runs()))


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/ledger.db"
    events = research_runs()
    events += [call(50_000 + i, "5", session=f"p{i}", task_class="research", environment="prod") for i in range(3)]
    with open_ledger(url) as ledger:
        ledger.append(events)
    return url


def test_cli_json_with_a_filter_and_the_policy_file(
    capsys: pytest.CaptureFixture[str], ledger_url: str, tmp_path: Path
) -> None:
    out_path = tmp_path / "budgets.yaml"
    argv = [
        "forecast",
        "--ledger",
        ledger_url,
        "--runs-per-day",
        "research=100",
        "--json",
        "--policy-out",
        str(out_path),
    ]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    research = json.loads(out)["groups"][0]
    assert research["runs"] == 23 and research["per_run"]["cost_usd"]["p95"] == "5"  # 22nd of 23: a prod run
    # P50: the 12th of 23 runs, 3 × $0.12; P95: the 22nd, $5
    assert research["projection"] == {"runs_per_day": "100", "days": 30, "p50_usd": "1080", "p95_usd": "15000"}
    assert "task_class-research-monthly" in out_path.read_text(encoding="utf-8")
    assert main(["forecast", "--ledger", ledger_url, "--where", "environment=prod", "--json"]) == 0
    (prod,) = json.loads(capsys.readouterr().out)["groups"]
    assert prod["runs"] == 3 and prod["per_run"]["cost_usd"] == {"p50": "5", "p95": "5", "mean": "5"}


def test_cli_table(capsys: pytest.CaptureFixture[str], ledger_url: str) -> None:
    assert main(["forecast", "--ledger", ledger_url, "--runs-per-day", "100", "--days", "7"]) == 0
    out = capsys.readouterr().out
    assert "7d at P95" in out and "research" in out and "triage" in out
    assert "P95 × volume the ceiling" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--runs-per-day", "lots"], "expected a positive number of runs"),
        (["--runs-per-day", "0"], "expected a positive number of runs"),
        (["--runs-per-day", "5", "--runs-per-day", "research=3"], "not both"),
        (["--by", "colour"], "cannot group runs by 'colour'"),
        (["--where", "nope=1"], "unknown dimension 'nope'"),
        (["--since", "2999-01-01"], "no runs recorded"),
        (["--days", "0"], "days must be at least 1"),
        (["--runs-per-day", "3", "--policy-out", "/nonexistent/dir/p.yaml"], "cannot write"),
    ],
)
def test_cli_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], ledger_url: str, args: list[str], message: str
) -> None:
    assert main(["forecast", "--ledger", ledger_url, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fiscus: error: ") and message in err and err.count("\n") == 1
