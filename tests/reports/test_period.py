"""Report windows and filters as typed on the command line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fiscus.errors import FiscusError
from fiscus.reports import ReportArgumentError, parse_by, parse_moment, parse_where

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "ago"),
    [
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        (" 4w", timedelta(weeks=4)),
    ],
)
def test_relative_spans(text: str, ago: timedelta) -> None:
    assert parse_moment(text, now=NOW) == NOW - ago


def test_iso_dates_and_times_are_utc() -> None:
    assert parse_moment("2026-03-01", now=NOW) == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_moment("2026-03-01T10:30", now=NOW) == datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    assert parse_moment("2026-03-01T10:30Z", now=NOW) == datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    moment = parse_moment("2026-03-01T10:30+02:00", now=NOW)
    assert moment == datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    assert moment.tzinfo == UTC or moment.utcoffset() == UTC.utcoffset(None)


@pytest.mark.parametrize("text", ["7 days", "3x", "2026-13-01", "yesterday", "", "-7d"])
def test_bad_moments_are_one_line_errors(text: str) -> None:
    with pytest.raises(ReportArgumentError) as info:
        parse_moment(text, now=NOW, option="--until")
    assert isinstance(info.value, FiscusError)
    assert str(info.value).startswith("--until")


def test_by_and_where() -> None:
    assert parse_by("agent, model,,day") == ("agent", "model", "day")
    assert parse_by(None) == ()
    assert parse_where(["team=growth", "env=prod,agent=triage"]) == {"team": "growth", "env": "prod", "agent": "triage"}
    for bad in ("team", "=x", "team="):
        with pytest.raises(ReportArgumentError, match="dimension=value"):
            parse_where([bad])
