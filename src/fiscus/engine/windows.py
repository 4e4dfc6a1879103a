"""Window instances: which counter keys a budget uses at a moment, and when the window resets.

Calendar windows follow the wall clock of the policy's time zone (a day across a DST change lasts 23 or
25 hours; a month ends on its last day). Rolling windows are fixed-size time buckets: the live buckets are
summed, the current one (keys[0]) takes new spend, and each bucket drops out whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fiscus.policy.types import Window


@dataclass(frozen=True, slots=True)
class WindowInstance:
    """`ids[0]` is the current instance (calendar: its start; rolling: the current bucket); `drops_at[i]`
    when `ids[i]` stops counting (rolling buckets, oldest last); `resets_at` the window's end (None: never)."""

    ids: tuple[str, ...]
    starts_at: float | None
    resets_at: float | None
    expires_at: float | None  # when a store may forget the counters
    drops_at: tuple[float, ...] = ()

    @property
    def resets_at_utc(self) -> datetime | None:
        return _as_datetime(self.resets_at)


@lru_cache(maxsize=4096)
def _as_datetime(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def window_instance(
    window: Window, now: float, zone: ZoneInfo, *, session: str | None, session_ttl: int
) -> WindowInstance | None:
    """The instance live at `now`; None when the window cannot apply (a session window without a session)."""
    kind = window.kind
    if kind == "calendar":
        return _calendar(str(window.unit), now, zone)
    if kind == "rolling":
        return _rolling(window.seconds, window.buckets, now)
    if kind == "session":
        if session is None:
            return None
        return WindowInstance((f"session:{quote(session, safe='')}",), None, None, now + session_ttl)
    return WindowInstance(("never",), None, None, None)


def _calendar(unit: str, now: float, zone: ZoneInfo) -> WindowInstance:
    local = datetime.fromtimestamp(now, UTC).astimezone(zone)
    if unit == "hour":
        # Hours are one real hour long even across DST: step in UTC from the local hour's start.
        start = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        end = start + timedelta(hours=1)
        ident = f"hour:{start.astimezone(zone).isoformat(timespec='minutes')}"
        return WindowInstance((ident,), start.timestamp(), end.timestamp(), end.timestamp() + 3600)
    day = local.date()
    if unit == "day":
        first, after, ident = day, day + timedelta(days=1), f"day:{day.isoformat()}"
    elif unit == "week":
        first = day - timedelta(days=day.weekday())
        after = first + timedelta(days=7)
        year, week, _ = first.isocalendar()
        ident = f"week:{year}-W{week:02d}"
    else:
        first = day.replace(day=1)
        after = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
        ident = f"month:{first.strftime('%Y-%m')}"
    start_ts, end_ts = _midnight(first, zone), _midnight(after, zone)
    return WindowInstance((ident,), start_ts, end_ts, end_ts + 86400)


def _midnight(day: date, zone: ZoneInfo) -> float:
    """Epoch seconds of local midnight starting `day`. Where DST skips midnight, fold=0 reads the wall time
    with the offset before the gap, which is exactly the instant the gap ends: the day's first instant."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()


def _rolling(seconds: int, buckets: int, now: float) -> WindowInstance:
    size = seconds // buckets
    current = int(now // size)
    ids = tuple(f"r{seconds}:{current - age}" for age in range(buckets))
    drops = tuple(float((current - age + buckets) * size) for age in range(buckets))
    return WindowInstance(ids, float((current - buckets + 1) * size), drops[-1], drops[0], drops)
