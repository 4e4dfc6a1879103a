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


def test_degraded_calls_counted_apart_with_their_cost(tmp_path, capsys) -> None:
    import json
    from dataclasses import replace
    from datetime import UTC, datetime, timedelta

    from fiscus.attribution import Attribution
    from fiscus.cli.main import main
    from fiscus.events.cost_event import CallStatus, CostEvent
    from fiscus.ledger import open_ledger
    from fiscus.pricing.cost import Cost
    from fiscus.usage.model import Usage

    now = datetime.now(UTC)

    def event(n: int, cost: str, team: str, **extra: object) -> CostEvent:
        return CostEvent(
            id=f"d{n}",
            timestamp=now - timedelta(minutes=n + 1),
            provider="openai",
            requested_model="gpt-4o",
            served_model="gpt-4o-mini",
            usage=Usage(input_tokens=100, output_tokens=10),
            cost=Cost(input=Decimal(cost)),
            attribution=Attribution(team=team),
            **extra,  # type: ignore[arg-type]
        )

    answered = event(0, "0.4", "growth", ungoverned_usd=Decimal("1.00"), saved=Savings(route=Decimal("0.6")))
    degraded = [
        replace(event(i, "0.125", team), tags={"degraded": "budget"})
        for i, team in ((1, "growth"), (2, "search"), (3, "search"))
    ]
    refused = event(4, "0", "growth", status=CallStatus.BLOCKED)
    url = f"sqlite:///{tmp_path}/ledger.db"
    with open_ledger(url) as ledger:
        ledger.append([answered, *degraded, refused])

    assert main(["report", "--ledger", url, "--by", "team", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    by_team = {row["group"]["team"]: row for row in data["rows"]}
    assert (by_team["growth"]["degraded_calls"], by_team["growth"]["degraded_usd"]) == (1, "0.125")
    assert (by_team["search"]["degraded_calls"], by_team["search"]["degraded_usd"]) == (2, "0.25")
    totals = data["totals"]
    assert (totals["degraded_calls"], totals["degraded_usd"], totals["refused"]) == (3, "0.375", 1)
    assert totals["saved_usd"] == "0.6" and totals["ungoverned_usd"] == "1"  # degraded work adds no saving

    assert main(["report", "--ledger", url]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "3 calls a budget degraded (a smaller model or a compressed context), costing $0.375" in text
    assert "counted apart, no saving" in text and "1 refused or partial calls did no work" in text

    assert main(["report", "--ledger", url, "--csv"]) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    cells = dict(zip(header.split(","), row.split(","), strict=True))
    assert (cells["degraded_calls"], cells["degraded_usd"]) == ("3", "0.375")

    # The dashboard's saving panel (the Finance view's month) counts them apart the same way.
    from fiscus.policy.load import parse_policy
    from fiscus.reports.finance import finance_summary

    with open_ledger(url) as ledger:
        summary = finance_summary(ledger, parse_policy({"budgets": []}), statuses=[], alerts=[], now=now)
    saving = summary["saving"]
    if now - timedelta(minutes=5) >= now.replace(day=1, hour=0, minute=0, second=0, microsecond=0):
        assert (saving["degraded_calls"], saving["degraded_usd"], saving["refused_calls"]) == (3, "0.375", 1)
        assert saving["saved_usd"] == "0.6"
