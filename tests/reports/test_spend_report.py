"""`SpendReport` renderings: exact JSON, chargeback CSV, Rich table with totals and cost per outcome."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal, localcontext

from rich.console import Console

from fiscus.ledger import SpendQuery, SpendRow
from fiscus.reports import SpendReport
from fiscus.reports.spend import dec

NOW = datetime(2026, 3, 10, tzinfo=UTC)


def _rows() -> list[SpendRow]:
    return [
        SpendRow(
            group={"team": "growth", "served_model": "gpt-4.1"},
            requests=3,
            input_tokens=100,
            cache_read_tokens=300,
            output_tokens=50,
            input_usd=Decimal("0.000000000000000000000000000001"),
            output_usd=Decimal("1.5"),
            estimated_events=1,
            statuses={"ok": 3},
            outcomes={"resolved_case": 2},
        ),
        SpendRow(
            group={"team": None, "served_model": "gpt-4o-mini"},
            requests=1,
            input_tokens=10,
            output_usd=Decimal("0.25"),
            fallback_price_events=1,
            statuses={"error": 1},
        ),
    ]


def _report() -> SpendReport:
    return SpendReport(query=SpendQuery(by=("team", "model")), rows=_rows(), generated_at=NOW)


def test_dec_keeps_every_digit() -> None:
    assert dec(Decimal("1E-30")) == "0.000000000000000000000000000001"
    assert dec(Decimal("12345678901234567890123456789.123456789")) == "12345678901234567890123456789.123456789"
    assert dec(Decimal("1.500")) == "1.5"
    assert dec(Decimal("100")) == "100"
    assert dec(Decimal("0E-9")) == "0"


def test_json_has_decimal_strings_and_totals() -> None:
    data = json.loads(_report().to_json())
    assert data["by"] == ["team", "served_model"]
    first = data["rows"][0]
    assert first["group"] == {"team": "growth", "served_model": "gpt-4.1"}
    assert first["total_usd"] == "1.500000000000000000000000000001"
    assert first["cache_hit_rate"] == "0.75"
    assert first["cost_per_outcome_usd"] == {"resolved_case": "0.75"}
    assert data["rows"][1]["group"]["team"] is None
    assert data["totals"]["requests"] == 4
    assert data["totals"]["total_usd"] == "1.750000000000000000000000000001"
    assert data["totals"]["estimated_events"] == 1 and data["totals"]["fallback_price_events"] == 1
    assert data["totals"]["statuses"] == {"error": 1, "ok": 3}


def test_csv_is_a_plain_chargeback_export() -> None:
    text = _report().to_csv()
    assert "\x1b" not in text and "$" not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 2  # one per group, no totals line
    assert rows[0]["team"] == "growth" and rows[0]["served_model"] == "gpt-4.1"
    assert rows[0]["total_usd"] == "1.500000000000000000000000000001"
    assert rows[0]["outcome_resolved_case"] == "2"
    assert rows[0]["cost_per_resolved_case_usd"] == "0.75"
    assert rows[1]["team"] == "" and rows[1]["outcome_resolved_case"] == "0"
    assert rows[1]["cost_per_resolved_case_usd"] == ""
    with localcontext(prec=60):  # finance adds the rows up: nothing was rounded away
        assert sum(Decimal(r["total_usd"]) for r in rows) == Decimal("1.750000000000000000000000000001")


def test_table_shows_groups_totals_outcomes_and_flags() -> None:
    console = Console(record=True, width=200)
    console.print(_report().to_table())
    text = console.export_text()
    assert "growth" in text and "(none)" in text and "gpt-4o-mini" in text
    assert "Total" in text and "$1.75" in text
    assert "resolved_case $0.75" in text
    assert "75.0%" in text
    assert "1 events with estimated usage" in text and "1 priced at a fallback price" in text


def test_no_outcome_column_without_outcomes() -> None:
    rows = [SpendRow(group={}, requests=1, output_usd=Decimal("2"))]
    console = Console(record=True, width=200)
    console.print(SpendReport(query=SpendQuery(), rows=rows, generated_at=NOW).to_table())
    text = console.export_text()
    assert "Cost per outcome" not in text
    assert "all events" in text


def test_cost_per_outcome_is_to_the_pico_dollar() -> None:
    row = SpendRow(group={}, requests=3, output_usd=Decimal("1"), outcomes={"done": 3, "never": 0})
    assert row.cost_per_outcome() == {"done": Decimal("0.333333333333")}
