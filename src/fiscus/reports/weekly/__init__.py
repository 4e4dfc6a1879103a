"""The weekly Finance–Engineering review: `build_weekly` from the ledger, rendered as Markdown, a
self-contained HTML page with charts, CSV or JSON, and delivered once a week to the notify channels."""

from fiscus.reports.weekly.build import build_weekly, last_complete_week, parse_week, split_change, week_of
from fiscus.reports.weekly.csv_export import to_csv
from fiscus.reports.weekly.html import to_html
from fiscus.reports.weekly.markdown import to_markdown
from fiscus.reports.weekly.model import Anomaly, Line, WeeklyReport

__all__ = [
    "Anomaly",
    "Line",
    "WeeklyReport",
    "build_weekly",
    "last_complete_week",
    "parse_week",
    "split_change",
    "to_csv",
    "to_html",
    "to_markdown",
    "week_of",
]
