"""Report windows and filters as users type them: `--since 7d`, `--until 2026-03-01`, `--where team=growth`."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from fiscus.errors import FiscusError


class ReportArgumentError(FiscusError):
    """A report option's value cannot be understood (a time, a dimension list, a filter)."""


_RELATIVE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_moment(text: str, *, now: datetime, option: str = "--since") -> datetime:
    """`30m`, `24h`, `7d`, `4w` (that long before `now`), an ISO date (its midnight, UTC) or an ISO date-time
    (UTC unless it says otherwise). Always returns an aware UTC datetime."""
    match = _RELATIVE.match(text)
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ReportArgumentError(
            f"{option} {text!r}: expected a span like 30m, 24h, 7d, 4w or an ISO date such as 2026-03-01"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_period(since: str | None, until: str | None, *, now: datetime) -> tuple[datetime | None, datetime | None]:
    """`--since` / `--until` as typed (either may be absent): the window's start and exclusive end."""
    start = parse_moment(since, now=now) if since else None
    end = parse_moment(until, now=now, option="--until") if until else None
    if start and end and start >= end:
        raise ReportArgumentError("--since must be earlier than --until")
    return start, end


def parse_by(text: str | None) -> tuple[str, ...]:
    """`agent,model` → ("agent", "model"); names are checked by the ledger's `SpendQuery`."""
    if not text:
        return ()
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_where(items: list[str] | None) -> dict[str, str]:
    """`["team=growth", "env=prod,agent=triage"]` → a filter dict; each item may hold several pairs."""
    where: dict[str, str] = {}
    for item in items or []:
        for pair in item.split(","):
            if not pair.strip():
                continue
            key, sep, value = pair.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise ReportArgumentError(f"--where {pair!r}: expected dimension=value, e.g. team=growth")
            where[key.strip()] = value.strip()
    return where
