"""The saving by lever counts apart, by name, what is no saving: refused or partial calls, calls a budget
degraded (they record no ungoverned cost), and says how many calls the response cache answered at $0."""

from __future__ import annotations

from decimal import Decimal

from fiscus.events.savings import Savings
from fiscus.ledger.base import SpendRow
from fiscus.reports.savings import savings_dict, savings_table


def test_counted_apart_by_name() -> None:
    row = SpendRow(group={}, requests=10, statuses={"ok": 6, "cache_hit": 2, "blocked": 1, "partial": 1})
    row.add_savings(Decimal("1.00"), Savings(cache=Decimal("0.30"), response_cache=Decimal("0.20")))
    table = savings_table(row)
    assert table is not None
    caption = str(table.caption)
    assert "2 refused or partial calls did no work" in caption
    assert "2 calls answered from the response cache at $0" in caption
    assert "degraded" in caption and "not equal work" in caption
    figures = savings_dict(row, str)
    assert figures["refused"] == 2 and figures["response_cache_hits"] == 2
    assert figures["saved_by_lever_usd"]["response_cache"] == "0.20"
