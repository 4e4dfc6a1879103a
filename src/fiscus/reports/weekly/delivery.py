"""`WeeklyDelivery`: once the week is over and its hour has come, build the review of the last complete week,
write it (Markdown, HTML, CSV, JSON) and announce it to the notify channels — once per week across every
worker and cron host sharing the budget store (the same claim as budget thresholds)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fiscus.config import WeeklyReviewConfig
from fiscus.events.cost_event import new_event_id
from fiscus.events.report_events import WeeklyReportReady
from fiscus.reports.weekly.build import WEEK, build_weekly, last_complete_week
from fiscus.reports.weekly.csv_export import to_csv
from fiscus.reports.weekly.html import to_html
from fiscus.reports.weekly.markdown import to_markdown
from fiscus.reports.weekly.model import WeeklyReport
from fiscus.reports.weekly.targets import Targets, load_targets, merged, policy_targets

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def write_report(report: WeeklyReport, out_dir: Path) -> dict[str, str]:
    """The four renderings as `<week>.md|html|csv|json` in `out_dir`; their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "md": to_markdown(report),
        "html": to_html(report),
        "csv": to_csv(report),
        "json": json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n",
    }
    written = {}
    for ext, text in files.items():
        path = out_dir / f"fiscus-weekly-{report.week}.{ext}"
        path.write_text(text, encoding="utf-8")
        written[ext] = str(path)
    return written


class WeeklyDelivery:
    def __init__(
        self, governor: Any, settings: WeeklyReviewConfig, *, ledger_url: str, open_ledger: Callable[[str], Any]
    ) -> None:
        self.governor = governor
        self.settings = settings
        self.ledger_url = ledger_url
        self._open_ledger = open_ledger

    def targets(self) -> Targets:
        from_file = load_targets(self.settings.targets) if self.settings.targets else {}
        return merged(from_file, policy_targets(self.governor.policy))

    def build(self, week: str, since: datetime, now: datetime) -> WeeklyReport:
        with self._open_ledger(self.ledger_url) as ledger:
            return build_weekly(
                ledger,
                self.governor.policy,
                week=week,
                since=since,
                generated_at=now,
                targets=self.targets(),
                statuses=self.governor.status(),
            )

    def due_at(self, since: datetime) -> datetime:
        """When the review of the week starting `since` goes out: its next `weekday` at `hour_utc`."""
        offset = _WEEKDAYS.index(self.settings.weekday)
        return since + WEEK + timedelta(days=offset, hours=self.settings.hour_utc)

    def check(self, now: datetime | None = None) -> WeeklyReportReady | None:
        """Deliver the last complete week's review if its time has come and no one has yet."""
        moment = now or datetime.fromtimestamp(self.governor.now(), UTC)
        week, since = last_complete_week(moment)
        if not self.settings.enabled or moment < self.due_at(since):
            return None
        return self.deliver(week, since, moment)

    def deliver(self, week: str, since: datetime, now: datetime) -> WeeklyReportReady | None:
        """Claim the week, build, write and announce its review; None when it was delivered before."""
        governor = self.governor
        expires = (since + 3 * WEEK).timestamp()
        if not governor.announcer.once(
            f"f:weekly|{week}", expires_at=expires, reservation_id=new_event_id(), now=governor.now()
        ):
            return None
        report = self.build(week, since, now)
        files = write_report(report, self.settings.out_dir)
        event = WeeklyReportReady(
            week=week,
            title=report.title,
            headline=report.headline,
            anomalies=len(report.anomalies),
            files=files,
            report=report.to_dict(),
            channel=self.settings.channel,
            timestamp=now,
        )
        governor.on_event(event)
        return event
