"""The spend report: `SpendRow`s from the ledger turned into what people and finance read.

Three renderings of one `SpendReport`: a Rich table for a terminal, JSON (decimal strings) for tools, and a
CSV chargeback export for finance (one row per group, exact decimals, nothing but data).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from rich.table import Table

from fiscus.ledger.base import SpendQuery, SpendRow
from fiscus.pricing.cost import usd

_RATE = Decimal("0.0001")


def dec(value: Decimal) -> str:
    """An exact decimal string without exponent or trailing zeros (no rounding, whatever the digits)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


@dataclass(slots=True)
class SpendReport:
    query: SpendQuery
    rows: list[SpendRow]
    generated_at: datetime
    totals: SpendRow = field(init=False)

    def __post_init__(self) -> None:
        self.totals = SpendRow(group={})
        for row in self.rows:
            self.totals.merge(row)

    @property
    def outcome_labels(self) -> list[str]:
        return sorted(self.totals.outcomes)

    # JSON

    def to_dict(self) -> dict[str, Any]:
        q = self.query
        return {
            "generated_at": self.generated_at.isoformat(),
            "since": q.since.isoformat() if q.since else None,
            "until": q.until.isoformat() if q.until else None,
            "by": list(q.by),
            "where": dict(q.where),
            "rows": [row_dict(r) for r in self.rows],
            "totals": row_dict(self.totals),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    # CSV

    def csv_header(self) -> list[str]:
        header = [*self.query.by, *_CSV_NUMBERS]
        for label in self.outcome_labels:
            header += [f"outcome_{label}", f"cost_per_{label}_usd"]
        return header

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.csv_header())
        labels = self.outcome_labels
        for row in self.rows:
            per = row.cost_per_outcome()
            cells: list[object] = [row.group.get(k) or "" for k in self.query.by]
            cells += _csv_numbers(row)
            for label in labels:
                cells += [row.outcomes.get(label, 0), dec(per[label]) if label in per else ""]
            writer.writerow(cells)
        return out.getvalue()

    # Table

    def to_table(self) -> Table:
        by = self.query.by
        table = Table(title=_title(self.query), show_footer=bool(self.rows), title_justify="left")
        labels = self.outcome_labels
        for i, key in enumerate(by or ("scope",)):
            table.add_column(_HEADINGS.get(key, key), footer="Total" if i == 0 else "")
        t = self.totals
        for heading, footer in (
            ("Requests", f"{t.requests:,}"),
            ("Input tok", f"{t.total_input_tokens:,}"),
            ("Output tok", f"{t.output_tokens:,}"),
            ("Cache hit", _percent(t.cache_hit_rate)),
            ("Spend", usd(t.total_usd)),
        ):
            table.add_column(heading, justify="right", footer=footer, no_wrap=True)
        if labels:
            table.add_column("Cost per outcome", footer=_per_outcome(t))
        for row in self.rows:
            cells = [row.group.get(k) or "(none)" for k in by] if by else ["all events"]
            cells += [
                f"{row.requests:,}",
                f"{row.total_input_tokens:,}",
                f"{row.output_tokens:,}",
                _percent(row.cache_hit_rate),
                usd(row.total_usd),
            ]
            if labels:
                cells.append(_per_outcome(row))
            table.add_row(*cells)
        notes = []
        if t.estimated_events:
            notes.append(f"{t.estimated_events:,} events with estimated usage")
        if t.fallback_price_events:
            notes.append(f"{t.fallback_price_events:,} priced at a fallback price")
        if notes:
            table.caption = "Includes " + "; ".join(notes) + "."
            table.caption_justify = "left"
        return table


_HEADINGS = {"served_model": "model", "requested_model": "requested model"}
_CSV_NUMBERS = (
    "requests",
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "input_usd",
    "cache_read_usd",
    "cache_write_usd",
    "output_usd",
    "total_usd",
    "cache_hit_rate",
    "estimated_events",
    "fallback_price_events",
)


def _csv_numbers(row: SpendRow) -> list[object]:
    return [
        row.requests,
        row.input_tokens,
        row.cache_read_tokens,
        row.cache_write_tokens,
        row.output_tokens,
        row.reasoning_tokens,
        dec(row.input_usd),
        dec(row.cache_read_usd),
        dec(row.cache_write_usd),
        dec(row.output_usd),
        dec(row.total_usd),
        dec(row.cache_hit_rate.quantize(_RATE)),
        row.estimated_events,
        row.fallback_price_events,
    ]


def row_dict(row: SpendRow) -> dict[str, Any]:
    return {
        "group": dict(row.group),
        "requests": row.requests,
        "input_tokens": row.input_tokens,
        "cache_read_tokens": row.cache_read_tokens,
        "cache_write_tokens": row.cache_write_tokens,
        "output_tokens": row.output_tokens,
        "reasoning_tokens": row.reasoning_tokens,
        "input_usd": dec(row.input_usd),
        "cache_read_usd": dec(row.cache_read_usd),
        "cache_write_usd": dec(row.cache_write_usd),
        "output_usd": dec(row.output_usd),
        "total_usd": dec(row.total_usd),
        "cache_hit_rate": dec(row.cache_hit_rate.quantize(_RATE)),
        "estimated_events": row.estimated_events,
        "fallback_price_events": row.fallback_price_events,
        "statuses": dict(sorted(row.statuses.items())),
        "outcomes": dict(sorted(row.outcomes.items())),
        "cost_per_outcome_usd": {k: dec(v) for k, v in row.cost_per_outcome().items()},
    }


def _percent(rate: Decimal) -> str:
    return f"{rate * 100:.1f}%"


def _per_outcome(row: SpendRow) -> str:
    return "\n".join(f"{label} {usd(cost)}" for label, cost in row.cost_per_outcome().items())


def _title(query: SpendQuery) -> str:
    since = query.since.strftime("%Y-%m-%d %H:%M") if query.since else "the beginning"
    until = query.until.strftime("%Y-%m-%d %H:%M") if query.until else "now"
    where = ", ".join(f"{k}={v}" for k, v in query.where.items())
    return f"Spend from {since} to {until} UTC" + (f" where {where}" if where else "")
