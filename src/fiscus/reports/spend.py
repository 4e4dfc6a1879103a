"""The spend report: `SpendRow`s from the ledger turned into what people and finance read.

Three renderings of one `SpendReport`: a Rich table for a terminal, JSON (decimal strings) for tools, and a
CSV chargeback export for finance (one row per group, exact decimals, nothing but data).

Cost per outcome is per case (session) when the report is given its `cases` (`reports.cases.case_costs` over the
same query: what `fiscus report` does); without them it falls back to the labelled calls of each row.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rich.table import Table

from fiscus.ledger.base import SpendQuery, SpendRow
from fiscus.pricing.cost import usd
from fiscus.reports.savings import SAVINGS_CSV, savings_cells, savings_dict

if TYPE_CHECKING:
    from fiscus.reports.cases import CaseGroup

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
    cases: list[CaseGroup] | None = None
    degraded: list[SpendRow] | None = None  # the calls a budget degraded, per group (`savings.degraded_spend`)
    totals: SpendRow = field(init=False)
    degraded_totals: SpendRow = field(init=False)
    _degraded_index: dict[tuple[str | None, ...], SpendRow] = field(init=False, default_factory=dict)
    _case_index: dict[tuple[str | None, ...], CaseGroup] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.totals = SpendRow(group={})
        for row in self.rows:
            self.totals.merge(row)
        self._case_index = {tuple(g.group.get(k) for k in self.query.by): g for g in self.cases or []}
        self.degraded_totals = SpendRow(group={})
        for row in self.degraded or []:
            self.degraded_totals.merge(row)
            self._degraded_index[tuple(row.group.get(k) for k in self.query.by)] = row

    def degraded_of(self, row: SpendRow | None) -> SpendRow | None:
        """The degraded calls of `row`'s group (of the totals for None)."""
        if row is None:
            return self.degraded_totals
        return self._degraded_index.get(tuple(row.group.get(k) for k in self.query.by))

    @property
    def outcome_labels(self) -> list[str]:
        if self.cases is not None:
            return sorted({label for g in self.cases for label in g.outcomes})
        return sorted(self.totals.outcomes)

    def case_group(self, row: SpendRow) -> CaseGroup | None:
        """The cases of `row`'s group (None without cases, or when no case falls in the group)."""
        if self.cases is None:
            return None
        found = self._case_index.get(tuple(row.group.get(k) for k in self.query.by))
        if found is None and not self.query.by:
            return self._case_total()
        return found

    def _case_total(self) -> CaseGroup | None:
        if self.cases is None:
            return None
        from fiscus.reports.cases import CaseGroup

        total = CaseGroup(group={})
        for group in self.cases:
            total.merge(group)
        return total

    def outcome_counts(self, row: SpendRow | None) -> tuple[dict[str, int], dict[str, Decimal]]:
        """Per outcome label: how many cases (or labelled calls) reached it, and the cost per outcome."""
        if self.cases is None:
            target = row or self.totals
            return dict(target.outcomes), target.cost_per_outcome()
        group = self.case_group(row) if row is not None else self._case_total()
        if group is None:
            return {}, {}
        return {k: o.cases for k, o in group.outcomes.items()}, group.cost_per_outcome()

    # JSON

    def to_dict(self) -> dict[str, Any]:
        q = self.query
        return {
            "generated_at": self.generated_at.isoformat(),
            "since": q.since.isoformat() if q.since else None,
            "until": q.until.isoformat() if q.until else None,
            "by": list(q.by),
            "where": dict(q.where),
            "rows": [self._row_dict(r) for r in self.rows],
            "totals": self._row_dict(None),
        }

    def _row_dict(self, row: SpendRow | None) -> dict[str, Any]:
        data = row_dict(row or self.totals, self.degraded_of(row))
        if self.cases is not None:
            group = self.case_group(row) if row is not None else self._case_total()
            data["cases"] = group.to_dict() if group is not None else None
            _, per = self.outcome_counts(row)
            data["cost_per_outcome_usd"] = {k: dec(v) for k, v in per.items()}
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    # CSV

    def csv_header(self) -> list[str]:
        header = [*self.query.by, *_CSV_NUMBERS]
        if self.cases is not None:
            header += ["cases", "cases_no_outcome"]
        for label in self.outcome_labels:
            header += [f"outcome_{label}", f"cost_per_{label}_usd"]
        return header

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.csv_header())
        labels = self.outcome_labels
        for row in self.rows:
            counts, per = self.outcome_counts(row)
            cells: list[object] = [row.group.get(k) or "" for k in self.query.by]
            cells += _csv_numbers(row, self.degraded_of(row))
            if self.cases is not None:
                group = self.case_group(row)
                cells += [group.cases, group.unlabelled.cases] if group is not None else [0, 0]
            for label in labels:
                cells += [counts.get(label, 0), dec(per[label]) if label in per else ""]
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
            ("Saved", _percent(t.saved_rate)),
        ):
            table.add_column(heading, justify="right", footer=footer, no_wrap=True)
        if labels:
            heading = "Cost per outcome" + (" (per case)" if self.cases is not None else "")
            table.add_column(heading, footer=_per_outcome(self.outcome_counts(None)[1]))
        for row in self.rows:
            cells = [row.group.get(k) or "(none)" for k in by] if by else ["all events"]
            cells += [
                f"{row.requests:,}",
                f"{row.total_input_tokens:,}",
                f"{row.output_tokens:,}",
                _percent(row.cache_hit_rate),
                usd(row.total_usd),
                _percent(row.saved_rate),
            ]
            if labels:
                cells.append(_per_outcome(self.outcome_counts(row)[1]))
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
    "tools_usd",
    "total_usd",
    "cache_hit_rate",
    "estimated_events",
    "fallback_price_events",
    *SAVINGS_CSV,
)


def _csv_numbers(row: SpendRow, degraded: SpendRow | None = None) -> list[object]:
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
        dec(row.tools_usd),
        dec(row.total_usd),
        dec(row.cache_hit_rate.quantize(_RATE)),
        row.estimated_events,
        row.fallback_price_events,
        *savings_cells(row, dec, degraded),
    ]


def row_dict(row: SpendRow, degraded: SpendRow | None = None) -> dict[str, Any]:
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
        "tools_usd": dec(row.tools_usd),
        "total_usd": dec(row.total_usd),
        "cache_hit_rate": dec(row.cache_hit_rate.quantize(_RATE)),
        "estimated_events": row.estimated_events,
        "fallback_price_events": row.fallback_price_events,
        "statuses": dict(sorted(row.statuses.items())),
        "outcomes": dict(sorted(row.outcomes.items())),
        "cost_per_outcome_usd": {k: dec(v) for k, v in row.cost_per_outcome().items()},
        **savings_dict(row, dec, degraded),
    }


def _percent(rate: Decimal) -> str:
    return f"{rate * 100:.1f}%"


def _per_outcome(per: dict[str, Decimal]) -> str:
    return "\n".join(f"{label} {usd(cost)}" for label, cost in per.items())


def _title(query: SpendQuery) -> str:
    since = query.since.strftime("%Y-%m-%d %H:%M") if query.since else "the beginning"
    until = query.until.strftime("%Y-%m-%d %H:%M") if query.until else "now"
    where = ", ".join(f"{k}={v}" for k, v in query.where.items())
    return f"Spend from {since} to {until} UTC" + (f" where {where}" if where else "")
