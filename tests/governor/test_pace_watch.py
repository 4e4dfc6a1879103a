"""`PaceWatch`: a calendar budget whose pace passes its limit before the reset is announced once per window,
across processes sharing the store (two governors here), with what a person needs to act; a fresh window
announces again; budgets under pace, and rolling windows, are never announced."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from fiscus.attribution import Attribution
from fiscus.events.budget_events import BudgetOffPace
from fiscus.governor import CallRequest
from fiscus.governor.pace_watch import PaceWatch
from fiscus.notify.payloads import event_dict, summary
from fiscus.stores import open_store
from fiscus.usage.model import Usage
from tests.governor._support import governor

POLICY = {
    "budgets": [
        {"name": "growth-day", "scope": {"team": "growth"}, "window": "day", "limit": {"usd": "0.3"}},
        {"name": "search-day", "scope": {"team": "search"}, "window": "day", "limit": {"usd": 100}},
        {"name": "growth-5h", "scope": {"team": "growth"}, "window": {"rolling": "5h"}, "limit": {"usd": "0.3"}},
    ]
}
MIDNIGHT = datetime(2026, 6, 9, tzinfo=UTC).timestamp()


def spend(gov: object, team: str) -> None:
    request = CallRequest(
        provider="local", model="big", attribution=Attribution(team=team), input_tokens=10_000, max_tokens=100
    )
    gov.settle(gov.admit(request), Usage(input_tokens=10_000, output_tokens=100))  # type: ignore[attr-defined]


def test_off_pace_is_announced_once_per_window_across_processes(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/budget.db"
    first, clock, _, events = governor(POLICY, store=open_store(store))
    second, other_clock, _, other_events = governor(POLICY, store=open_store(store))
    clock.now = other_clock.now = MIDNIGHT + 6 * 3600  # a quarter of the day gone
    spend(first, "growth")  # $0.103 of $0.30: 34 % now, 137 % by midnight at this pace
    spend(first, "search")
    (event,) = PaceWatch(first).check()
    assert isinstance(event, BudgetOffPace) and event.budget == "growth-day"
    assert event.projected.quantize(Decimal("0.0001")) == Decimal("1.3733")  # 0.103 / 0.3 × 4
    expected = MIDNIGHT + 6 * 3600 * 0.3 / 0.103  # the same pace reaches $0.30 at 17:28
    assert event.exhausts_at is not None and abs(event.exhausts_at.timestamp() - expected) < 1
    assert event.resets_at == datetime.fromtimestamp(MIDNIGHT + 86_400, UTC)
    assert events[-1] is event
    assert PaceWatch(second).check() == [] and PaceWatch(first).check() == []  # once, whoever checks
    assert not any(isinstance(e, BudgetOffPace) for e in other_events)
    line = summary(event_dict(event))
    assert line == (
        "fiscus: budget growth-day (team=growth) at 34% ($0.103 of $0.30 used) is on pace for 137% by its reset; "
        "at this pace its limit falls 2026-06-09 17:28 UTC, the window resets 2026-06-10 00:00 UTC"
    )

    clock.now = MIDNIGHT + 86_400 + 6 * 3600  # the next day, same pace: a new window, a new announcement
    spend(first, "growth")
    assert [e.budget for e in PaceWatch(first).check()] == ["growth-day"]
    first.close()
    second.close()


def test_no_pace_warning_once_the_budget_has_no_room() -> None:
    policy = {
        "budgets": [
            {
                "name": "growth-day",
                "scope": {"team": "growth"},
                "window": "day",
                "limit": {"usd": "0.21"},
                "thresholds": [{"at": 1, "action": "block"}],
            }
        ]
    }
    gov, clock, _, events = governor(policy)
    clock.now = MIDNIGHT + 6 * 3600
    spend(gov, "growth")
    spend(gov, "growth")  # $0.206 of $0.21 by 06:00: on pace for 392 %
    request = CallRequest(
        provider="local", model="big", attribution=Attribution(team="growth"), input_tokens=10_000, max_tokens=100
    )
    assert not gov.admit(request).decision.calls_model  # not even one tier down fits the $0.004 left
    (row,) = gov.status()
    assert row.utilisation < 1 and row.pace is not None and row.pace.over
    assert [type(e).__name__ for e in events] == ["BudgetExhausted"]
    assert PaceWatch(gov).check() == []  # too late to warn: the exhaustion was announced
    gov.close()
