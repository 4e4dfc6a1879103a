"""`session.outcome = …`: attached after the session's calls, kept in the ledger, never stopping the session."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

import fiscus
from fiscus.governor import Governor
from fiscus.guards.registry import BreakerRegistry
from fiscus.ledger import LedgerWriter, open_ledger
from fiscus.policy.load import parse_policy
from fiscus.pricing.catalogue import PriceCatalogue
from fiscus.reports.cases import case_costs
from fiscus.stores import open_store


def _ask(client, text: str) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}], max_tokens=20)


def test_outcomes_attached_after_the_calls_give_cost_per_case(openai_client, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"
    governor = Governor(
        policy=parse_policy({}),
        store=open_store("memory://"),
        catalogue=PriceCatalogue(),
        ledger=LedgerWriter(open_ledger(url)),
    )
    client = fiscus.wrap(openai_client, agent="support", governor=governor, breakers=BreakerRegistry())
    with fiscus.session(workflow="tickets") as first:
        _ask(client, "ticket one, step one")
        _ask(client, "ticket one, step two")
        first.outcome = "escalated"
        _ask(client, "ticket one, step three")  # an outcome does not stop the session
        assert not first.partial and first.steps == 3
    first.outcome = "resolved"  # later, once the customer confirmed: the latest one counts
    with fiscus.session(workflow="tickets") as second:
        _ask(client, "ticket two")
        second.outcome = "resolved"
    with fiscus.session(workflow="tickets"):
        _ask(client, "ticket three, abandoned")
    governor.close()
    assert first.outcome == "resolved" and first.ended_as == "completed"
    with open_ledger(url) as ledger:
        assert ledger.outcomes([first.id, second.id]) == {first.id: "resolved", second.id: "resolved"}
        (tickets,) = case_costs(ledger, by=("workflow",))
    total = first.cost + second.cost + tickets.unlabelled.cost
    assert tickets.cases == 3 and tickets.unlabelled.cases == 1
    assert tickets.outcomes["resolved"].cases == 2
    assert tickets.outcomes["resolved"].cost == first.cost + second.cost
    assert tickets.cost_per_outcome()["resolved"] == (total / 2).quantize(Decimal("1E-12"))


def test_a_bad_outcome_label_is_refused(openai_client) -> None:
    with fiscus.session(agent="a") as s, pytest.raises(ValueError, match="must not be empty"):
        s.outcome = "  "
    assert s.outcome == "completed"
