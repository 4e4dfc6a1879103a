"""The per-case aggregates answered inside the database (session rollup plus the events at the window's edges)
equal the same aggregates computed from every event, on SQLite and PostgreSQL: tallies per outcome with
recorded outcomes winning over call labels, cost ranks per set of keys, forecast run statistics and the cost
of chosen sessions; an amount with more than 18 decimals still answers exactly."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from fiscus.attribution import Attribution
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.events.outcome_event import OutcomeRecorded
from fiscus.ledger import Ledger, SpendQuery, open_ledger
from fiscus.ledger.cases import HIGH_MEDIAN, LOW_MEDIAN, P50, P95, Rank
from fiscus.pricing.cost import Cost
from fiscus.usage.model import Usage
from tests.ledger.comparable import comparable

START = datetime(2026, 2, 2, tzinfo=UTC)
RANKS = (P50, P95, LOW_MEDIAN, HIGH_MEDIAN, Rank.nearest("0.9"))


def _traffic(fine: bool = False) -> list[CostEvent]:
    rng = random.Random(7)
    out = []
    for s in range(300):
        at = START + timedelta(seconds=rng.randrange(3 * 86400))
        session = f"s{s:03d}" if s % 6 else None
        for i in range(rng.randint(1, 5)):
            at += timedelta(seconds=rng.randrange(1, 2400))
            digits = 21 if fine and s == 5 else 10
            out.append(
                CostEvent(
                    id=f"e{s}-{i}",
                    timestamp=at,
                    provider="openai",
                    requested_model="gpt-4.1",
                    served_model="gpt-4.1",
                    usage=Usage(input_tokens=rng.randrange(4000), output_tokens=rng.randrange(600)),
                    cost=Cost(
                        input=Decimal(rng.randrange(10**7)) / Decimal(10**digits),
                        output=Decimal(rng.randrange(5)) / Decimal(1000),
                    ),
                    attribution=Attribution(
                        team=rng.choice(["support", "growth", None]),
                        agent=rng.choice(["triage", "writer"]),
                        workflow=rng.choice(["tickets", "leads"]),
                        task_class=rng.choice(["classify", "draft"]),
                        environment=rng.choice(["prod", "staging"]),
                        session=session,
                        outcome=rng.choice(["resolved", "escalated", None]) if i >= 1 else None,
                    ),
                    status=CallStatus.OK,
                )
            )
    return out


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    url = f"sqlite:///{tmp_path}/ledger.db" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    with open_ledger(url) as led:
        led.append(_traffic())
        led.record_outcomes([
            OutcomeRecorded(id=f"o{i}", timestamp=START + timedelta(days=1, seconds=i), session=f"s{i:03d}",
                            outcome="failed" if i % 2 else "resolved", source="admin")
            for i in range(1, 60, 5)
        ])  # fmt: skip
        yield led


WINDOWS = [
    (None, None),
    (START + timedelta(hours=5, minutes=13), START + timedelta(days=2, hours=3, minutes=7)),
    (START + timedelta(days=1), START + timedelta(days=2)),
    (START + timedelta(minutes=10), START + timedelta(minutes=50)),
]


def test_case_aggregates_equal_a_scan(ledger: Ledger) -> None:
    seen = 0
    for since, until in WINDOWS:
        for where in ({}, {"environment": "prod"}):
            for by in ((), ("workflow",), ("team", "agent")):
                q = SpendQuery(by=by, since=since, until=until, where=where)
                fast, slow = ledger.case_tallies(q), ledger.case_tallies(q, scan=True)
                assert comparable(fast) == comparable(slow), (since, until, where, by)
                seen += sum(t.cases for t in fast)
            q = SpendQuery(by=("team", "workflow", "agent"), since=since, until=until, where=where)
            sets = [(), ("team",), ("workflow",), ("agent",), ("team", "agent")]
            for alone in (True, False):
                fast = ledger.case_ranks(q, sets, RANKS, singles=alone)
                assert comparable(fast) == comparable(ledger.case_ranks(q, sets, RANKS, scan=True, singles=alone))
            for key in ("task_class", "team"):
                q = SpendQuery(by=(key,), since=since, until=until, where=where)
                assert comparable(ledger.run_stats(q, RANKS)) == comparable(ledger.run_stats(q, RANKS, scan=True))
            q = SpendQuery(by=("task_class",), since=since, until=until, where=where)
            wanted = [f"s{i:03d}" for i in range(0, 300, 7)]
            assert comparable(ledger.session_costs(q, wanted)) == comparable(ledger.session_costs(q, wanted, scan=True))
    assert seen > 0
    tallies = ledger.case_tallies(SpendQuery())
    assert {t.outcome for t in tallies} == {"resolved", "escalated", "failed", None}


def test_recorded_outcome_wins_over_the_calls_labels(ledger: Ledger) -> None:
    ranks = {t.outcome: t.cases for t in ledger.case_tallies(SpendQuery())}
    assert ranks.get("failed", 0) >= 6  # only ever recorded, never a call's label


def test_an_amount_beyond_limbs_is_still_exact(tmp_path: Path) -> None:
    with open_ledger(f"sqlite:///{tmp_path}/fine.db") as led:
        led.append(_traffic(fine=True))
        q = SpendQuery(by=("workflow",), since=START + timedelta(minutes=7), until=START + timedelta(days=3))
        assert comparable(led.case_tallies(q)) == comparable(led.case_tallies(q, scan=True))
        sets = [(), ("workflow",)]
        assert comparable(led.case_ranks(q, sets, RANKS)) == comparable(led.case_ranks(q, sets, RANKS, scan=True))
        assert comparable(led.run_stats(q, RANKS)) == comparable(led.run_stats(q, RANKS, scan=True))
