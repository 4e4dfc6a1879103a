"""The weekly review on a real SQLite ledger: the seeds' volume-vs-efficiency example, targets, anomalies with
owners and due dates, movers, cache and context per workflow, cost per outcome; every rendering; the CLI."""

from __future__ import annotations

import csv
import io
import itertools
import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from fiscus.attribution import Attribution
from fiscus.cli.main import main
from fiscus.events.cost_event import CostEvent
from fiscus.events.outcome_event import OutcomeRecorded
from fiscus.ledger import Ledger, open_ledger
from fiscus.policy.load import parse_policy
from fiscus.pricing.cost import Cost
from fiscus.reports.weekly import build_weekly, parse_week, split_change, to_csv, to_html, to_markdown
from fiscus.reports.weekly.targets import load_targets, merged, policy_targets
from fiscus.usage.model import Usage

WEEK, SINCE = parse_week("2026-W10")  # Monday 2026-03-02
GENERATED = SINCE + timedelta(days=7, hours=8)
_ids = itertools.count()
POLICY = {
    "owners": {"default": "finops@example.com", "workflow": {"research": "rita@example.com"}},
    "targets": {"workflow": {"support": {"p50_usd": "0.5", "p95_usd": "0.8"}}},
}


def _case(ledger: Ledger, at: datetime, cost: str, workflow: str, *, calls: int = 1, **usage: int) -> str:
    session = f"s{next(_ids)}"
    each = Decimal(cost) / calls
    ledger.append(
        [
            CostEvent(
                id=f"e{next(_ids)}",
                timestamp=at + timedelta(minutes=n),
                provider="anthropic",
                requested_model="claude-sonnet-4-6",
                served_model="claude-sonnet-4-6",
                usage=Usage(
                    input_tokens=usage.get("input", 1000), cache_read_tokens=usage.get("cached", 0), output_tokens=50
                ),
                cost=Cost(input=each),
                attribution=Attribution(team="cx", workflow=workflow, agent=f"{workflow}-bot", session=session),
            )
            for n in range(calls)
        ]
    )
    return session


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    led = open_ledger(f"sqlite:///{tmp_path}/ledger.db")
    before = SINCE - timedelta(days=7)
    for n in range(100):  # the week before: 100 support cases at $1
        _case(led, before + timedelta(hours=1, minutes=n), "1", "support", input=1000, cached=3000)
    for n in range(160):  # this week: 160 cases for $140 — +40 % spend on +60 % volume
        _case(led, SINCE + timedelta(hours=1, minutes=n), "0.875", "support", input=1000, cached=3000)
    for n in range(6):  # research: cost per case up 50 %, context doubled
        _case(led, before + timedelta(days=1, minutes=n), "2", "research", input=10_000)
        resolved = _case(led, SINCE + timedelta(days=1, minutes=n), "3", "research", calls=3, input=20_000)
        if n < 4:
            led.record_outcomes([OutcomeRecorded(session=resolved, outcome="answered", source="sdk")])
    yield led
    led.close()


def test_the_seeds_example_is_volume_not_efficiency() -> None:
    volume, efficiency, verdict = split_change(Decimal(140), Decimal(100), 160, 100)
    assert (volume, efficiency, verdict) == (Decimal(60), Decimal(-20), "volume")
    assert split_change(Decimal(140), Decimal(100), 100, 100) == (Decimal(0), Decimal(40), "efficiency")
    assert split_change(Decimal(5), Decimal(0), 3, 0) == (Decimal(5), Decimal(0), "new")


def test_weekly_review(ledger: Ledger) -> None:
    policy = parse_policy(POLICY)
    report = build_weekly(
        ledger, policy, week=WEEK, since=SINCE, generated_at=GENERATED, targets=policy_targets(policy)
    )
    support = next(line for line in report.lines["workflow"] if line.name == "support")
    assert (support.spend, support.spend_before, support.cases, support.cases_before) == (
        Decimal(140),
        Decimal(100),
        160,
        100,
    )
    assert support.change_rate == Decimal("0.4") and support.volume_rate == Decimal("0.6")
    assert support.verdict == "volume" and support.volume_effect + support.efficiency_effect == Decimal(40)
    assert (support.p50_target, support.p95_ceiling, support.target_source) == (
        Decimal("0.5"),
        Decimal("0.8"),
        "policy",
    )
    assert support.case_p95 == Decimal("0.875") and support.above_p95
    assert support.cache_hit_rate == Decimal("0.75")
    research = next(line for line in report.lines["workflow"] if line.name == "research")
    assert research.verdict == "efficiency" and research.context_growth == Decimal(2)
    # no policy target: the P50 / P95 of the cases of the four weeks before
    assert (research.p95_ceiling, research.target_source) == (Decimal(2), "prior 4 weeks") and research.above_p95
    kinds = {(a.kind, a.subject): a for a in report.anomalies}
    assert kinds[("above_p95", "workflow=support")].owner == "finops@example.com"
    assert kinds[("above_p95", "workflow=research")].owner == "rita@example.com"
    efficiency = kinds[("efficiency", "workflow=research")]
    assert efficiency.owner == "rita@example.com" and "cost per case rose 50 %" in efficiency.summary
    assert efficiency.due == GENERATED + timedelta(hours=48)
    assert [(m.dimension, m.name) for m in report.movers][:3] == [
        ("team", "cx"),
        ("agent", "support-bot"),
        ("workflow", "support"),
    ]
    (cases_research,) = [g for g in report.cases if g.group["workflow"] == "research"]
    assert cases_research.outcomes["answered"].cases == 4 and cases_research.unlabelled.cases == 2
    assert cases_research.cost_per_outcome()["answered"] == Decimal("4.5")  # $18 over 4 answered cases
    assert report.total.spend == Decimal(158) and len(report.daily) == 2
    assert report.headline.startswith(
        "$158.00 this week (+41 % on the week before); cases +57 %, so the rise is volume"
    )

    md = to_markdown(report)
    for part in (
        "# Weekly AI spend review 2026-W10",
        "## Anomalies",
        "rita@example.com",
        "## Spend by product area",
        "## Spend by workflow",
        "## Spend by agent",
        "## Top movers",
        "target 70 %",
        "## Context growth",
        "## Cost per outcome per case",
        "(no outcome reported)",
        "volume (cost per case steady or down)",
    ):
        assert part in md, part
    html = to_html(report)
    assert html.count("<svg") >= 4 and "<script" not in html and "http" not in html.replace("http://www.w3.org", "")
    assert "rita@example.com" in html and "above P95" in html
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    assert {r["section"] for r in rows} == {"spend", "anomaly", "mover", "outcome"}
    support_row = next(r for r in rows if r["section"] == "spend" and r["name"] == "support")
    assert (
        support_row["spend_usd"] == "140" and support_row["verdict"] == "volume" and support_row["above_p95"] == "True"
    )
    data = json.loads(json.dumps(report.to_dict()))
    assert data["week"] == "2026-W10" and data["by"]["workflow"][0]["name"] == "support"


def test_targets_from_forecast_output(tmp_path: Path) -> None:
    path = tmp_path / "forecast.json"
    groups = [{"group": "support", "per_run": {"cost_usd": {"p50": "0.4", "p95": "0.9"}}}]
    path.write_text(json.dumps({"by": "workflow", "groups": groups}), encoding="utf-8")
    found = load_targets(path)
    assert found["workflow"]["support"].p95 == Decimal("0.9") and found["workflow"]["support"].source == "forecast"
    policy = policy_targets(parse_policy(POLICY))
    assert merged(found, policy)["workflow"]["support"].p95 == Decimal("0.8")  # the policy's own wins
    (tmp_path / "bad.json").write_text("[1]", encoding="utf-8")
    assert main(["report", "weekly", "--ledger", "sqlite:///:memory:", "--targets", str(tmp_path / "bad.json")]) == 2


def test_cli_renders_and_sends_once_a_week(ledger: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "policy.yaml").write_text(json.dumps(POLICY), encoding="utf-8")
    config = tmp_path / "fiscus.yaml"
    config.write_text(
        f"ledger: {ledger.url}\nbudget_store: sqlite:///{tmp_path}/budgets.db\npolicy: policy.yaml\n"
        "notify: {channels: {finance: {kind: log}}, default: [finance]}\n"
        "review: {weekly: {out_dir: out, channel: finance}}\n",
        encoding="utf-8",
    )
    page = tmp_path / "week.html"
    assert (
        main(["report", "weekly", "--config", str(config), "--week", WEEK, "--format", "html", "--out", str(page)]) == 0
    )
    assert page.read_text(encoding="utf-8").startswith("<!doctype html>")
    capsys.readouterr()
    assert main(["report", "weekly", "--config", str(config), "--week", WEEK, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["week"] == WEEK
    assert main(["report", "weekly", "--config", str(config), "--week", "2026-W99"]) == 2
    assert main(["report", "weekly", "--config", str(config), "--format", "pdf"]) == 2
    capsys.readouterr()
    assert main(["report", "weekly", "--config", str(config), "--week", WEEK, "--send"]) == 0
    assert capsys.readouterr().out.startswith(f"Sent the review of {WEEK}")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"fiscus-weekly-{WEEK}.{ext}" for ext in ("csv", "html", "json", "md")
    ]
    assert main(["report", "weekly", "--config", str(config), "--week", WEEK, "--send"]) == 0
    assert "delivered before" in capsys.readouterr().out
    assert main(["report", "--ledger", ledger.url, "--by", "workflow", "--json"]) == 0  # the plain report stands
    assert json.loads(capsys.readouterr().out)["by"] == ["workflow"]
