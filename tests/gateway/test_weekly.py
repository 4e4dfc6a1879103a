"""The gateway's weekly review schedule: the last complete week's review is written and announced once."""

from __future__ import annotations

import time
from pathlib import Path

from fiscus.config import GatewayConfig, ReviewConfig, WeeklyReviewConfig
from fiscus.events.report_events import WeeklyReportReady

from .conftest import real_gateway


def test_gateway_delivers_the_weekly_review_once(tmp_path: Path, emulator_url: str) -> None:
    # due from Monday 00:00 UTC: the default (Monday 08:00) would make the last week's review wait on a Monday night
    weekly = WeeklyReviewConfig(
        weekday="monday", hour_utc=0, check_s=0.1, out_dir=tmp_path / "reports", channel="finance"
    )
    review = ReviewConfig(weekly=weekly)
    update = {"review": review, "gateway": GatewayConfig(pace_check_s=0, alert_check_s=0)}
    store = f"sqlite:///{tmp_path}/budgets.db"
    with real_gateway(tmp_path, emulator_url, "budgets: []\n", store, config_update=update) as real:
        heard: list[object] = []
        real.governor.add_listener(heard.append)
        deadline = time.monotonic() + 10
        while not any(isinstance(e, WeeklyReportReady) for e in heard) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # later checks: the week is claimed
    ready = [e for e in heard if isinstance(e, WeeklyReportReady)]
    assert len(ready) == 1 and ready[0].channel == "finance"
    assert sorted(Path(p).suffix for p in ready[0].files.values()) == [".csv", ".html", ".json", ".md"]
    assert all(Path(p).exists() for p in ready[0].files.values())
