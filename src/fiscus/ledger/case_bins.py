"""Exact order statistics of the case summary's sessions from two small reads instead of one read of them all.

Sorting every session of four weeks to take three ranks per group read ~150k rows into Python at 10M events
(1-2 s). Here the database counts the window's summary rows per group and bin — an integer that never decreases
as the value grows (`bin_of`: the value itself below 1,000, else its digit count and first three digits, so a
bin is 0.1-1 % wide) — which is a few thousand rows. With the few cases that are not in the summary added to
the counts, the counts say which bin holds each asked position and where inside it; a second read fetches the
sessions of those bins only, and the value at the position is picked from them. The answer is the one a sort
of every value gives: values in a lower bin are smaller, and within a bin the values are sorted exactly.

Money is binned by its whole micro-dollars (floor), tokens and calls by their count; the same integer
function is spelled in SQL (`bin_sql`) and here.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

from fiscus.ledger.cases import Rank, positions

TOP_DIGITS = 16  # values of more digits share the top bin (a limb-encoded amount stays below 2^53 µ$)
_TOP_BIN = (TOP_DIGITS + 1) * 1000


def bin_of(value: int) -> int:
    """The bin of an integer value: -1 for any negative, the value below 1,000, else digits × 1000 + the first
    three digits."""
    if value < 1000:
        return -1 if value < 0 else value
    digits = len(str(value))
    if digits > TOP_DIGITS:
        return _TOP_BIN
    return digits * 1000 + value // 10 ** (digits - 3)


def whole(b: int) -> bool:
    """Whether every integer value in bin `b` is `b` itself (no need to read them)."""
    return 0 <= b < 1000


def bin_sql(value: str, div: str = "{a} / {b}") -> str:
    """`bin_of` over the integer SQL expression `value`; `div` spells integer division of {a} by {b}."""
    whens = [f"WHEN {value} < 0 THEN -1", f"WHEN {value} < 1000 THEN {value}"]
    for digits in range(4, TOP_DIGITS + 1):
        cut = div.format(a=value, b=10 ** (digits - 3))
        whens.append(f"WHEN {value} < {10**digits} THEN {digits * 1000} + {cut}")
    return f"CAST(CASE {' '.join(whens)} ELSE {_TOP_BIN} END AS BIGINT)"


Key = Hashable
Spot = tuple[int, int]  # (bin, 1-based place among the bin's values)


def locate(counts: Mapping[Key, Mapping[int, int]], ranks: Sequence[Rank]) -> dict[Key, tuple[int, dict[int, Spot]]]:
    """Per group of per-bin counts: how many values in all, and where each asked position (1 and each rank's)
    falls: its bin and its place in that bin."""
    out: dict[Key, tuple[int, dict[int, Spot]]] = {}
    for key, bins in counts.items():
        n = sum(bins.values())
        wanted = sorted(positions(n, ranks)) if n else []
        found: dict[int, Spot] = {}
        below, i = 0, 0
        for b in sorted(bins):
            held = bins[b]
            while i < len(wanted) and wanted[i] <= below + held:
                found[wanted[i]] = (b, wanted[i] - below)
                i += 1
            below += held
            if i == len(wanted):
                break
        out[key] = (n, found)
    return out


def add_counts(counts: dict[Key, dict[int, int]], key: Key, b: int, n: int = 1) -> None:
    bins = counts.setdefault(key, {})
    bins[b] = bins.get(b, 0) + n


def needed(located: Mapping[Key, tuple[int, Mapping[int, Spot]]]) -> set[tuple[Key, int]]:
    """The (group, bin) pairs whose values must be read."""
    return {(key, spot[0]) for key, (_, spots) in located.items() for spot in spots.values()}


def pick(
    located: Mapping[Key, tuple[int, Mapping[int, Spot]]],
    values: Mapping[tuple[Key, int], list[Any]],
    held: Mapping[tuple[Key, int], int],
) -> dict[Key, dict[int, Any]] | None:
    """The value at each located position, from the values read of each needed (group, bin) — None when a
    bin's values are not as many as counted (the ledger changed between the two reads)."""
    out: dict[Key, dict[int, Any]] = {}
    sorted_bins: dict[tuple[Key, int], list[Any]] = {}
    for key, (_, spots) in located.items():
        chosen: dict[int, Any] = {}
        for p, (b, place) in spots.items():
            at = (key, b)
            ordered = sorted_bins.get(at)
            if ordered is None:
                ordered = sorted_bins[at] = sorted(values.get(at, ()))
                if len(ordered) != held.get(at, 0):
                    return None
            chosen[p] = ordered[place - 1]
        out[key] = chosen
    return out


def in_pairs(columns: Sequence[str], pairs: Iterable[tuple[Sequence[Any], int]], p: str) -> tuple[str, list[Any]]:
    """A condition true for a row whose `columns` and bin `b` are one of `pairs` ((values of columns, bin)) —
    led by `b IN (…)`, which the bin's index serves — and its parameters."""
    pairs = list(pairs)
    bins = sorted({b for _, b in pairs})
    among = f"b IN ({', '.join([f'CAST({p} AS BIGINT)'] * len(bins))})"
    if not columns:
        return among, bins
    one = "(" + ", ".join([f"CAST({p} AS TEXT)"] * len(columns) + [f"CAST({p} AS BIGINT)"]) + ")"
    params: list[Any] = list(bins)
    for values, b in pairs:
        params += [*values, b]
    return f"{among} AND ({', '.join([*columns, 'b'])}) IN (VALUES {', '.join([one] * len(pairs))})", params
