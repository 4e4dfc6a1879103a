"""The pace of a calendar window: its use so far carried at the same rate to the reset — the share it reaches
and when the limit falls first — in `status()`, its JSON and `fiscus budgets status`."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from fiscus.attribution import Attribution
from fiscus.cli.main import main
from fiscus.governor import CallRequest
from fiscus.governor.status import pace_of
from fiscus.stores import Amounts, Limits, open_store
from fiscus.usage.model import Usage
from tests.governor._support import governor

DAY = 86_400.0
START = datetime(2026, 6, 1, tzinfo=UTC).timestamp()
END = datetime(2026, 7, 1, tzinfo=UTC).timestamp()  # a 30-day month


def test_half_the_limit_in_a_third_of_the_month_runs_out_on_day_20() -> None:
    pace = pace_of(Amounts(nanos=50), Limits(nanos=100), START, END, START + 10 * DAY)
    assert pace is not None and pace.over
    assert pace.projected == Decimal("1.5")
    assert pace.exhausts_at == datetime(2026, 6, 21, tzinfo=UTC)  # day 20 ends


def test_a_slow_pace_stays_under_and_names_no_date() -> None:
    pace = pace_of(Amounts(nanos=10, requests=1), Limits(nanos=100, requests=10), START, END, START + 15 * DAY)
    assert pace is not None and not pace.over
    assert pace.projected == Decimal("0.2") and pace.exhausts_at is None


def test_the_fastest_meter_decides() -> None:
    pace = pace_of(Amounts(nanos=10, tokens=600), Limits(nanos=100, tokens=1000), START, END, START + 15 * DAY)
    assert pace is not None and pace.projected == Decimal("1.2")
    assert pace.exhausts_at == datetime.fromtimestamp(START + 25 * DAY, UTC)


@pytest.mark.parametrize("elapsed", [60.0, 0.5 * DAY, 30 * DAY])
def test_no_pace_too_early_or_once_the_window_is_over(elapsed: float) -> None:
    assert pace_of(Amounts(nanos=50), Limits(nanos=100), START, END, START + elapsed) is None


def test_status_gives_calendar_windows_a_pace_and_rolling_ones_none(tmp_path: Path) -> None:
    policy = {
        "budgets": [
            {"name": "team-day", "scope": {"team": "growth"}, "window": "day", "limit": {"usd": 1}},
            {"name": "team-5h", "scope": {"team": "growth"}, "window": {"rolling": "5h"}, "limit": {"usd": 1}},
        ]
    }
    store_url = f"sqlite:///{tmp_path}/budget.db"
    gov, clock, _, _ = governor(policy, store=open_store(store_url))
    midnight = datetime(2026, 6, 9, tzinfo=UTC).timestamp()
    clock.now = midnight + 6 * 3600  # a quarter of the day
    request = CallRequest(
        provider="local", model="big", attribution=Attribution(team="growth"), input_tokens=10_000, max_tokens=100
    )
    gov.settle(gov.admit(request), Usage(input_tokens=10_000, output_tokens=100))  # $0.103 of $1
    day, rolling = gov.status()
    assert day.pace is not None and rolling.pace is None
    assert day.pace.projected == Decimal("0.412") and day.pace.exhausts_at is None
    assert day.to_dict()["projected_utilisation"] == "0.4120"
    assert rolling.to_dict()["projected_utilisation"] is None
    gov.close()


def test_budgets_status_prints_the_pace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    budgets = [{"name": "team-month", "scope": {"team": "growth"}, "window": "month", "limit": {"requests": 1000}}]
    policy = tmp_path / "policy.yaml"
    policy.write_text(json.dumps({"budgets": budgets}), encoding="utf-8")  # JSON is YAML
    store = f"sqlite:///{tmp_path}/budget.db"
    gov, clock, _, _ = governor({"budgets": budgets}, store=open_store(store))
    clock.now = time.time()  # the CLI reads the store at the real time
    request = CallRequest(
        provider="local", model="big", attribution=Attribution(team="growth"), input_tokens=100, max_tokens=10
    )
    gov.settle(gov.admit(request), Usage(input_tokens=100, output_tokens=10))
    gov.close()
    assert main(["budgets", "status", "--policy", str(policy), "--store", store, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["budgets"]
    month = datetime.now(UTC)
    far_enough = (month - month.replace(day=1, hour=0, minute=0, second=0, microsecond=0)).total_seconds() > 15 * 3600
    if far_enough:  # 1 request so far: a month at that pace stays far below 1000
        assert Decimal("0") < Decimal(row["projected_utilisation"]) < Decimal("1")
    else:
        assert row["projected_utilisation"] is None
    assert row["exhausts_at"] is None
    assert main(["budgets", "status", "--policy", str(policy), "--store", store]) == 0
    assert "pace" in capsys.readouterr().out
    tight = tmp_path / "tight.yaml"
    tight.write_text(json.dumps({"budgets": [{**budgets[0], "limit": {"requests": 2}}]}), encoding="utf-8")
    assert main(["budgets", "status", "--policy", str(tight), "--store", store]) == 0
    out = capsys.readouterr().out
    # one request so far: the limit of 2 falls before the reset while less than half the month is gone
    start = month.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    gap = (end - start).total_seconds() - 2 * (month - start).total_seconds()
    if abs(gap) > 120:  # not within a minute or two of the half, where the test's own run time could tip it
        assert ("team-month: at this pace its limit falls" in out) is (far_enough and gap > 0)
