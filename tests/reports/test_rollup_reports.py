"""The reports read the rollups and answer what they answered from the events: forecast runs from the session
rollup and the calls outside sessions, cases (cost per outcome) and the weekly review's lines, on SQLite and
PostgreSQL, for windows that do not fall on hours."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fiscus.attribution import Attribution
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.ledger import Ledger, SpendQuery, open_ledger
from fiscus.ledger.base import regroup
from fiscus.policy.types import Policy
from fiscus.pricing.cost import Cost
from fiscus.reports.cases import case_costs
from fiscus.reports.finance import finance_summary
from fiscus.reports.forecast import forecast, ledger_runs
from fiscus.reports.weekly.build import build_weekly
from fiscus.usage.model import Usage

MONDAY = datetime(2026, 2, 2, tzinfo=UTC)  # ISO week 2026-W06; the traffic starts five weeks before


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    url = f"sqlite:///{tmp_path}/ledger.db" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    with open_ledger(url) as led:
        led.append(_traffic())
        yield led


def _traffic() -> list[CostEvent]:
    rng = random.Random(3)
    start = MONDAY - timedelta(weeks=5)
    out = []
    for s in range(400):
        at = start + timedelta(seconds=rng.randrange(6 * 7 * 86400))
        agent = rng.choice(["triage", "resolver", "writer"])
        session = f"s{s}" if s % 7 else None
        for i in range(rng.randint(1, 6)):
            at += timedelta(seconds=rng.randrange(1, 900))
            out.append(
                CostEvent(
                    id=f"e{s}-{i}",
                    timestamp=at,
                    provider="openai",
                    requested_model="gpt-4.1",
                    served_model=rng.choice(["gpt-4.1", "gpt-4.1-mini"]),
                    usage=Usage(input_tokens=rng.randrange(4000), output_tokens=rng.randrange(600)),
                    cost=Cost(
                        input=Decimal(rng.randrange(10**7)) / Decimal(10**10),
                        output=Decimal(rng.randrange(10**6)) / Decimal(10**9),
                    ),
                    attribution=Attribution(
                        team="support" if agent != "writer" else "growth",
                        agent=agent,
                        workflow=rng.choice(["tickets", "leads"]) if i == 0 else "tickets",
                        task_class=rng.choice(["classify", "draft"]),  # a session may change class
                        environment=rng.choice(["prod", "staging"]),
                        session=session,
                        outcome=rng.choice(["resolved", "escalated"]) if i == 3 else None,
                    ),
                    status=CallStatus.OK if rng.random() < 0.95 else CallStatus.ERROR,
                )
            )
    return out


WINDOWS = [
    (None, None),
    (MONDAY - timedelta(weeks=2, minutes=13), MONDAY + timedelta(hours=30, minutes=7)),
    (MONDAY - timedelta(days=9), MONDAY),
]


def _forecast_dict(runs: Any, by: str) -> dict[str, Any]:
    return forecast(runs, by=by, runs_per_day=Decimal(10), days=30).to_dict()


@pytest.mark.parametrize("by", ["task_class", "workflow", "agent", "user"])
def test_forecast_from_the_session_rollup_equals_the_events(ledger: Ledger, by: str) -> None:
    for since, until in WINDOWS:
        for where in ({}, {"environment": "prod"}, {"model": "gpt-4.1"}):
            fast = ledger_runs(ledger, by, since=since, until=until, where=where)  # counted in the database
            events = list(ledger.events(since=since, until=until, where=where))
            assert _forecast_dict(fast, by) == _forecast_dict(events, by), (since, until, where)


def _scanning(ledger: Ledger) -> Any:
    """The same ledger with the session rollup out of the way (every session read from the events)."""

    class Scan:
        def __getattr__(self, name: str) -> Any:
            return getattr(ledger, name)

        def session_spend(self, query: Any, *, scan: bool = False, outcomes: bool = True) -> Any:
            return ledger.session_spend(query, scan=True, outcomes=outcomes)

        def spend(self, query: Any, *, scan: bool = False) -> Any:
            return ledger.spend(query, scan=True)

        def case_tallies(self, query: Any, *, scan: bool = False) -> Any:
            return ledger.case_tallies(query, scan=True)

        def case_ranks(self, query: Any, sets: Any, ranks: Any, *, scan: bool = False, singles: bool = True) -> Any:
            return ledger.case_ranks(query, sets, ranks, scan=True, singles=singles)

    return Scan()


def test_cases_and_the_weekly_review_equal_a_scan(ledger: Ledger) -> None:
    for since, until in WINDOWS:
        for by in (("workflow",), ("team", "agent"), ("model",)):
            fast = [g.to_dict() for g in case_costs(ledger, by=by, since=since, until=until)]
            slow = [g.to_dict() for g in case_costs(_scanning(ledger), by=by, since=since, until=until)]
            assert fast == slow, (since, until, by)
    args: dict[str, Any] = {"week": "2026-W06", "since": MONDAY, "generated_at": MONDAY + timedelta(days=8),
                            "targets": {}}  # fmt: skip
    fast_week = build_weekly(ledger, Policy(), **args).to_dict()
    slow_week = build_weekly(_scanning(ledger), Policy(), **args).to_dict()
    assert fast_week == slow_week
    assert fast_week["total"]["cases"] > 0


def test_the_dashboard_summary_equals_a_scan(ledger: Ledger) -> None:
    for now in (MONDAY + timedelta(days=3, hours=5, minutes=17), MONDAY - timedelta(days=2, minutes=41)):
        fast = finance_summary(ledger, Policy(), statuses=[], alerts=[], now=now)
        assert fast == finance_summary(_scanning(ledger), Policy(), statuses=[], alerts=[], now=now), now
        assert fast["spend"]["today_usd"] != "0"


def test_a_grouping_summed_from_a_finer_one_is_the_spend_query_of_it(ledger: Ledger) -> None:
    for since, until in WINDOWS:
        fine = ledger.spend(SpendQuery(by=("day", "team", "agent"), since=since, until=until))
        for by in ((), ("day",), ("team",), ("agent", "day")):
            direct = ledger.spend(SpendQuery(by=by, since=since, until=until), scan=True)
            assert regroup(fine, by) == direct, (since, by)
