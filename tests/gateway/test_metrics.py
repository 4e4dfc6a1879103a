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
