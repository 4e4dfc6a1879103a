"""Exact money sums in SQLite's own integers: an amount as two integer limbs, so a rollup read sums natively.

SQLite has no exact decimal type; summing decimal text through a Python aggregate costs a callback per row
(~4 µs), which is what an all-time or month query over the rollups spent its time on. An amount with at most
18 decimals is `hi` micro-dollars plus `lo` atto-dollars (0 <= lo < 10^12): SUM(hi) and SUM(lo) are exact
int64 sums (SQLite raises on overflow, it never wraps), and the two give the exact total back.

An amount with more decimals than that (a custom price with many digits) cannot be limbs: its rollup row is
marked inexact and read through the decimal-text column and the Python aggregate, which every row keeps too.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from fiscus.ledger.base import MONEY_CONTEXT

LO = 10**12  # atto-dollars per micro-dollar
_MAX_HI = 2**53  # micro-dollars a row may hold ($9 billion): sums of many rows stay far below int64
_ATTO = Decimal("1E-18")


def limbs(amount: Decimal) -> tuple[int, int] | None:
    """(hi, lo) with amount = hi * 10^-6 + lo * 10^-18 exactly, or None when the amount cannot be limbs."""
    if not amount:
        return 0, 0
    scaled = MONEY_CONTEXT.scaleb(amount, 18)  # exact: only the exponent moves
    whole = int(scaled)
    if whole != scaled:  # more than 18 decimals
        return None
    hi, lo = divmod(whole, LO)
    if abs(hi) > _MAX_HI:
        return None
    return hi, lo


def row_limbs(amounts: Sequence[Decimal]) -> tuple[list[int], int]:
    """The limbs of a row's amounts in order (hi, lo, hi, lo, …) and its exact flag (0: read it as text)."""
    out: list[int] = []
    scaleb, ctx = Decimal.scaleb, MONEY_CONTEXT
    for amount in amounts:  # `limbs` inlined: an append computes this for every rollup row it touches
        if not amount:
            out += (0, 0)
            continue
        scaled = scaleb(amount, 18, ctx)
        whole = int(scaled)
        hi, lo = divmod(whole, LO)
        if whole != scaled or abs(hi) > _MAX_HI:
            return [0] * (2 * len(amounts)), 0
        out += (hi, lo)
    return out, 1


def from_limbs(hi: int | None, lo: int | None) -> Decimal:
    """The exact amount of summed limbs, without trailing zeros (nor a positive exponent)."""
    total = MONEY_CONTEXT.multiply(Decimal((hi or 0) * LO + (lo or 0)), _ATTO)
    if not total:
        return Decimal(0)
    total = total.normalize(MONEY_CONTEXT)
    exponent = total.as_tuple().exponent
    return total.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else total


def upsert_sets(table: str, column: str) -> list[str]:
    """SET clauses adding inserted limbs to stored ones, carrying `lo` into `hi` so `lo` stays below 10^12."""
    hi, lo = f"{column}_hi", f"{column}_lo"
    carry = f"({table}.{lo} + excluded.{lo})"
    return [f"{hi} = {table}.{hi} + excluded.{hi} + {carry} / {LO}", f"{lo} = {carry} % {LO}"]


def limb_columns(columns: Sequence[str]) -> list[str]:
    return [f"{c}_{part}" for c in columns for part in ("hi", "lo")]


def limb_sums(columns: Sequence[str]) -> list[str]:
    """Select-list text: each column's limbs summed over the exact rows."""
    return [f"SUM({c}) FILTER (WHERE exact = 1)" for c in limb_columns(columns)]


def add_text(a: Decimal, text: object) -> Decimal:
    """`a` plus what a Python aggregate over the inexact rows gave (None: there were none)."""
    return a if text is None else MONEY_CONTEXT.add(a, Decimal(str(text)))
