"""`WeeklyReportReady`: the weekly review of a week, built and written; delivered once per week."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class WeeklyReportReady:
    week: str
    title: str
    headline: str
    anomalies: int
    files: dict[str, str]  # format → path written
    report: dict[str, Any]  # the whole report as JSON (webhooks get it all)
    channel: str | None = None
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "weekly_report",
            "week": self.week,
            "title": self.title,
            "headline": self.headline,
            "anomalies": self.anomalies,
            "files": dict(self.files),
            "report": self.report,
            "timestamp": self.timestamp.isoformat(),
        }
