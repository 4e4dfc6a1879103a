from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from fiscus.engine.windows import window_instance
from fiscus.policy import Window


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def bounds(unit: str, now: str, zone: str) -> tuple[str, str, str]:
    inst = window_instance(Window("calendar", unit=unit), at(now), ZoneInfo(zone), session=None, session_ttl=0)
    assert inst is not None and inst.starts_at is not None and inst.resets_at is not None
    z = ZoneInfo(zone)
    return (
        inst.ids[0],
        datetime.fromtimestamp(inst.starts_at, z).isoformat(),
        datetime.fromtimestamp(inst.resets_at, z).isoformat(),
    )


@pytest.mark.parametrize(
    ("unit", "now", "zone", "expected"),
    [
        # Month ends: February in a leap and a common year, December into January.
        (
            "month",
            "2028-02-29T23:59:59+00:00",
            "UTC",
            ("month:2028-02", "2028-02-01T00:00:00+00:00", "2028-03-01T00:00:00+00:00"),
        ),
        (
            "month",
            "2027-02-28T12:00:00+00:00",
            "UTC",
            ("month:2027-02", "2027-02-01T00:00:00+00:00", "2027-03-01T00:00:00+00:00"),
        ),
        (
            "month",
            "2026-12-31T23:30:00+00:00",
            "Europe/Berlin",
            ("month:2027-01", "2027-01-01T00:00:00+01:00", "2027-02-01T00:00:00+01:00"),
        ),
        # Berlin spring forward (29 Mar 2026, 02:00 → 03:00): a 23-hour day.
        (
            "day",
            "2026-03-29T12:00:00+00:00",
            "Europe/Berlin",
            ("day:2026-03-29", "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"),
        ),
        # Berlin fall back (25 Oct 2026, 03:00 → 02:00): a 25-hour day; the month ends in winter time.
        (
            "day",
            "2026-10-25T12:00:00+00:00",
            "Europe/Berlin",
            ("day:2026-10-25", "2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00"),
        ),
        (
            "month",
            "2026-10-31T22:59:00+00:00",
            "Europe/Berlin",
            ("month:2026-10", "2026-10-01T00:00:00+02:00", "2026-11-01T00:00:00+01:00"),
        ),
        # New York: spring forward 8 Mar 2026, fall back 1 Nov 2026; ISO weeks start on Monday.
        (
            "day",
            "2026-03-08T15:00:00+00:00",
            "America/New_York",
            ("day:2026-03-08", "2026-03-08T00:00:00-05:00", "2026-03-09T00:00:00-04:00"),
        ),
        (
            "week",
            "2026-11-01T12:00:00+00:00",
            "America/New_York",
            ("week:2026-W44", "2026-10-26T00:00:00-04:00", "2026-11-02T00:00:00-05:00"),
        ),
        # The repeated hour at fall back is two distinct windows.
        (
            "hour",
            "2026-11-01T05:30:00+00:00",
            "America/New_York",
            ("hour:2026-11-01T01:00-04:00", "2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00"),
        ),
        (
            "hour",
            "2026-11-01T06:30:00+00:00",
            "America/New_York",
            ("hour:2026-11-01T01:00-05:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"),
        ),
    ],
)
def test_calendar_windows(unit: str, now: str, zone: str, expected: tuple[str, str, str]) -> None:
    assert bounds(unit, now, zone) == expected


def test_reset_is_exact_at_the_boundary() -> None:
    zone = ZoneInfo("Europe/Berlin")
    reset = window_instance(
        Window("calendar", unit="day"), at("2026-03-29T12:00:00+00:00"), zone, session=None, session_ttl=0
    )
    assert reset is not None and reset.resets_at is not None
    before = window_instance(Window("calendar", unit="day"), reset.resets_at - 0.001, zone, session=None, session_ttl=0)
    after = window_instance(Window("calendar", unit="day"), reset.resets_at, zone, session=None, session_ttl=0)
    assert before is not None and after is not None
    assert before.ids == ("day:2026-03-29",) and after.ids == ("day:2026-03-30",)


def test_rolling_window_buckets() -> None:
    window = Window("rolling", seconds=5 * 3600, buckets=12)  # 25-minute buckets
    now = 1_800_000_123.0
    inst = window_instance(window, now, ZoneInfo("UTC"), session=None, session_ttl=0)
    assert inst is not None
    assert len(inst.ids) == 12
    current = int(now // 1500)
    assert inst.ids[0] == f"r18000:{current}" and inst.ids[-1] == f"r18000:{current - 11}"
    assert inst.drops_at[-1] == (current + 1) * 1500  # the oldest bucket drops at the current bucket's end
    assert inst.drops_at[0] == (current + 12) * 1500
    later = window_instance(window, now + 1500, ZoneInfo("UTC"), session=None, session_ttl=0)
    assert later is not None and later.ids[1:] == inst.ids[:-1]


def test_session_and_never_windows() -> None:
    zone = ZoneInfo("UTC")
    assert window_instance(Window("session"), 0.0, zone, session=None, session_ttl=60) is None
    inst = window_instance(Window("session"), 100.0, zone, session="a|b", session_ttl=60)
    assert inst is not None and inst.ids == ("session:a%7Cb",) and inst.resets_at is None and inst.expires_at == 160.0
    never = window_instance(Window("never"), 100.0, zone, session=None, session_ttl=60)
    assert never is not None and never.ids == ("never",) and never.resets_at is None and never.expires_at is None


def test_utc_instant_inside_the_window() -> None:
    inst = window_instance(
        Window("calendar", unit="month"), at("2026-05-10T00:00:00+00:00"), ZoneInfo("UTC"), session=None, session_ttl=0
    )
    assert inst is not None and inst.starts_at == datetime(2026, 5, 1, tzinfo=UTC).timestamp()
