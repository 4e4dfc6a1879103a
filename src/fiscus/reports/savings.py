"""The saving by lever: what the governed calls would have cost ungoverned, and what each lever took off.

Read from the spend rows (each event records its ungoverned cost and per-lever saving, `fiscus.events.savings`).
A saving is a share of the ungoverned cost of the calls that were answered; refused and partial calls did no
work, so they are counted apart and never as a saving; calls a budget degraded record no ungoverned cost (tagged
`degraded=budget` on their events) and so add no saving: they are counted apart too, with what they cost
(`Ledger.tagged_spend`); response-cache hits are counted by name.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich.table import Table

from fiscus.events.savings import LEVERS
from fiscus.ledger.base import MONEY_CONTEXT, SpendRow
from fiscus.pricing.cost import usd

LEVER_NAMES = {
    "cache": "prompt cache",
    "route": "routing",
    "context": "context window",
    "summary": "rolling summary",
    "response_cache": "response cache",
    "batch": "batch",
}
_RATE = Decimal("0.0001")
DEGRADED = ("degraded", "budget")  # the tag on the events of calls a budget degraded
SAVINGS_CSV = (
    "ungoverned_usd",
    "saved_usd",
    "saved_rate",
    *(f"saved_{lever}_usd" for lever in LEVERS),
    "refused",
    "degraded_calls",
    "degraded_usd",
)


def degraded_spend(ledger: Any, query: Any) -> list[SpendRow]:
    """The calls a budget degraded, per group of `query`: their count and cost."""
    return ledger.tagged_spend(query, *DEGRADED)  # type: ignore[no-any-return]


def share(part: Decimal, whole: Decimal) -> Decimal:
    return MONEY_CONTEXT.divide(part, whole) if whole else Decimal(0)


def savings_dict(row: SpendRow, dec: Any, degraded: SpendRow | None = None) -> dict[str, Any]:
    """The row's savings as JSON-safe values (`dec` renders a Decimal exactly); `degraded` is the same group's
    calls a budget degraded."""
    return {
        "ungoverned_usd": dec(row.ungoverned_usd),
        "saved_usd": dec(row.saved.total),
        "saved_rate": dec(row.saved_rate.quantize(_RATE)),
        "saved_by_lever_usd": {lever: dec(value) for lever, value in row.saved.by_lever().items()},
        "refused": row.refused,
        "response_cache_hits": row.statuses.get("cache_hit", 0),
        "degraded_calls": degraded.requests if degraded else 0,
        "degraded_usd": dec(degraded.total_usd if degraded else Decimal(0)),
    }


def savings_cells(row: SpendRow, dec: Any, degraded: SpendRow | None = None) -> list[object]:
    """The row's savings for the CSV, in `SAVINGS_CSV` order."""
    return [
        dec(row.ungoverned_usd),
        dec(row.saved.total),
        dec(row.saved_rate.quantize(_RATE)),
        *(dec(value) for value in row.saved.by_lever().values()),
        row.refused,
        degraded.requests if degraded else 0,
        dec(degraded.total_usd if degraded else Decimal(0)),
    ]


def savings_table(totals: SpendRow, degraded: SpendRow | None = None) -> Table | None:
    """Ungoverned cost, saving by lever and overall (USD and % of ungoverned), what is no saving counted apart;
    None when nothing recorded a saving and no budget degraded a call."""
    if not totals.ungoverned_usd and not (degraded and degraded.requests):
        return None
    table = Table(title="Saving by lever (against the same calls ungoverned)", title_justify="left")
    table.add_column("Lever")
    table.add_column("Saved", justify="right", no_wrap=True)
    table.add_column("Of ungoverned", justify="right", no_wrap=True)
    whole = totals.ungoverned_usd
    for lever, value in totals.saved.by_lever().items():
        if value:
            table.add_row(LEVER_NAMES[lever], usd(value), _percent(share(value, whole)))
    table.add_row("all levers", usd(totals.saved.total), _percent(share(totals.saved.total, whole)), style="bold")
    notes = [f"Ungoverned {usd(whole)}, governed {usd(whole - totals.saved.total)}."]
    if totals.refused:
        notes.append(f"{totals.refused:,} refused or partial calls did no work and count as no saving.")
    hits = totals.statuses.get("cache_hit", 0)
    if hits:
        notes.append(f"{hits:,} calls answered from the response cache at $0.")
    if degraded and degraded.requests:
        notes.append(
            f"{degraded.requests:,} calls a budget degraded (a smaller model or a compressed context), costing"
            f" {usd(degraded.total_usd)}, are not equal work: counted apart, no saving."
        )
    else:
        notes.append("Calls a budget degraded (a smaller model or a compressed context) are not equal work: no saving.")
    table.caption = " ".join(notes)
    table.caption_justify = "left"
    return table


def _percent(rate: Decimal) -> str:
    return f"{rate * 100:.1f}%"
