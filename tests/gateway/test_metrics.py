"""Budget gauges in /metrics: one series per budget; a per-value budget (one instance per user) reports its most
used instance, for utilisation and for its pace to the reset."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from fiscus.gateway.metrics import GatewayMetrics
from fiscus.governor.status import Pace


@dataclass
class Row:
    budget: str
    utilisation: Decimal
    pace: Pace | None = None


def test_a_per_value_budget_reports_its_most_used_instance() -> None:
    rows = [
        Row("per-user", Decimal("0.2"), Pace(Decimal("1.5"), None)),
        Row("per-user", Decimal("0.7"), Pace(Decimal("0.9"), None)),
        Row("team", Decimal("0.1")),
    ]
    text = GatewayMetrics(status=lambda: rows, status_every_s=0).render().decode()
    assert 'fiscus_budget_utilisation{budget="per-user"} 0.7' in text
    assert 'fiscus_budget_utilisation{budget="team"} 0.1' in text
    assert 'fiscus_budget_projected_utilisation{budget="per-user"} 1.5' in text
    assert 'fiscus_budget_projected_utilisation{budget="team"}' not in text


def test_spend_per_agent_and_team_has_bounded_labels() -> None:
    from fiscus.attribution import Attribution
    from fiscus.events.cost_event import CostEvent
    from fiscus.pricing.cost import Cost
    from fiscus.usage.model import Usage

    metrics = GatewayMetrics(top_n=2)
    for n, cost in enumerate(["5", "4", "3", "2", "1"]):
        metrics.settled(
            CostEvent(
                provider="openai",
                requested_model="gpt-4o",
                served_model="gpt-4o",
                usage=Usage(input_tokens=10),
                cost=Cost(input=Decimal(cost)),
                attribution=Attribution(agent=f"agent-{n}", team="growth" if n < 3 else "search"),
            )
        )
    text = metrics.render().decode()
    lines = sorted(line for line in text.splitlines() if line.startswith("fiscus_cost_usd_by{"))
    assert lines == [
        'fiscus_cost_usd_by{dimension="agent",value="agent-0"} 5.0',
        'fiscus_cost_usd_by{dimension="agent",value="agent-1"} 4.0',
        'fiscus_cost_usd_by{dimension="agent",value="other"} 6.0',
        'fiscus_cost_usd_by{dimension="team",value="growth"} 12.0',
        'fiscus_cost_usd_by{dimension="team",value="search"} 3.0',
    ]
