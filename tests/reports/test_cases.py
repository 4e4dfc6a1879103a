"""Cost per outcome per case: sessions are cases, the latest attached outcome counts, no-outcome cases apart."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from fiscus.attribution import Attribution
from fiscus.events.cost_event import CostEvent
from fiscus.events.outcome_event import OutcomeRecorded
from fiscus.ledger import Ledger, open_ledger
from fiscus.pricing.cost import Cost
from fiscus.reports.cases import case_costs
from fiscus.usage.model import Usage

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _call(n: int, cost: str, **dims: str) -> CostEvent:
    return CostEvent(
        id=f"e{n:04d}",
        timestamp=T0 + timedelta(minutes=n),
        provider="openai",
        requested_model="gpt-4o-mini",
        served_model="gpt-4o-mini",
        usage=Usage(input_tokens=100, output_tokens=10),
        cost=Cost(input=Decimal(cost)),
        attribution=Attribution(**dims),
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with open_ledger(f"sqlite:///{tmp_path}/ledger.db") as led:
        yield led


def test_cost_per_outcome_counts_cases_not_labelled_calls(ledger: Ledger) -> None:
    ledger.append(
        [
            # three calls of one resolved case; the header outcome on its last call only
            _call(1, "0.10", workflow="support", session="t-1"),
            _call(2, "0.10", workflow="support", session="t-1"),
            _call(3, "0.10", workflow="support", session="t-1", outcome="resolved"),
            # a case escalated first, resolved later through the SDK / admin API
            _call(4, "0.50", workflow="support", session="t-2"),
            # a case with no outcome at all
            _call(5, "0.20", workflow="support", session="t-3"),
            # a case in another workflow
            _call(6, "1.00", workflow="sales", session="l-1"),
        ]
    )
    ledger.record_outcomes(
        [
            OutcomeRecorded(session="t-2", outcome="escalated", source="sdk", timestamp=T0 + timedelta(hours=1)),
            OutcomeRecorded(session="t-2", outcome="resolved", source="admin", timestamp=T0 + timedelta(hours=2)),
            OutcomeRecorded(session="l-1", outcome="lead_qualified", source="admin", timestamp=T0),
        ]
    )
    groups = {g.group["workflow"]: g for g in case_costs(ledger, by=("workflow",))}
    support = groups["support"]
    assert support.cases == 3 and support.cost == Decimal("1.00")
    assert {k: o.cases for k, o in support.outcomes.items()} == {"resolved": 2}
    assert support.outcomes["resolved"].cost == Decimal("0.80")
    assert support.unlabelled.cases == 1 and support.unlabelled.cost == Decimal("0.20")
    # one resolved case costs the workflow's whole spend over its resolved cases: $1.00 / 2
    assert support.cost_per_outcome() == {"resolved": Decimal("0.5")}
    assert support.to_dict()["outcomes"][0] == {
        "outcome": "resolved",
        "cases": 2,
        "cost_usd": "0.8",
        "avg_case_usd": "0.4",
        "cost_per_outcome_usd": "0.5",
    }
    assert groups["sales"].cost_per_outcome() == {"lead_qualified": Decimal("1")}


def test_calls_outside_sessions_are_cases_of_their_own(ledger: Ledger) -> None:
    ledger.append(
        [
            _call(1, "0.3", agent="triage", outcome="resolved"),
            _call(2, "0.3", agent="triage"),
            _call(3, "0.4", agent="triage", session="s-9"),
        ]
    )
    (triage,) = case_costs(ledger, by=("agent",))
    assert triage.cases == 3
    assert triage.outcomes["resolved"].cases == 1 and triage.unlabelled.cases == 2
    assert triage.cost_per_outcome() == {"resolved": Decimal("1.0")}


def test_a_session_across_groups_counts_once_in_its_dearest(ledger: Ledger) -> None:
    ledger.append([_call(1, "0.1", team="a", session="s"), _call(2, "0.9", team="b", session="s")])
    groups = case_costs(ledger, by=("team",))
    assert [(g.group["team"], g.cases, g.cost) for g in groups] == [("b", 1, Decimal("1.0"))]
