"""Case ranks and run statistics of the case summary's sessions, picked in Python from two small reads
(`fiscus.ledger.case_bins`): per group and bin counts, then only the bins that hold an asked position.

Window functions rank a partition by sorting it, once per set of keys and measure; sorting every session once
and walking them here read ~150k rows into Python at 10M events. Counting per bin in the database and reading
the few bins needed is a few thousand rows. The cases not in the summary (sessions crossing the window's
bounds, calls outside sessions) are few: they are read whole, added to the counts and to the bins read. Costs
are compared exactly: SQLite's limbs as integer atto-dollars (`fiscus.ledger.limbs`), PostgreSQL's NUMERIC as
Decimal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fiscus.ledger.case_bins import Key, add_counts, bin_of, in_pairs, locate, needed, pick, whole
from fiscus.ledger.cases import CaseRanks, Rank, RunStats

Row = Sequence[Any]
# Reads of the summary's sessions in the window: `count()` gives (k…, b, sessions, exact) per group and cost bin
# (for runs: (measure, k0, b, sessions, calls, cost cells…, exact) per measure: 'c' cost, 't' tokens, 'n' calls);
# `read(condition, params)` the sessions a condition on (k…, b) picks, as (k…, b, cost cells…) (for runs:
# `read(measure, condition, params)` → (k0, b, the measure's cells…)).
Count = Callable[[], list[Row]]
Read = Callable[[str, list[Any]], list[Row]]
ReadRuns = Callable[[str, str, list[Any]], list[Row]]


@dataclass(frozen=True, slots=True)
class Picker:
    """A backend's cost cells as an exactly ordered value (`value`), their exact sum (`add`), the amount back and
    its whole micro-dollars (`micros`, floor: what its bin is of)."""

    width: int  # cost cells per row
    value: Callable[[Sequence[Any]], Any]
    add: Callable[[Any, Any], Any]
    money: Callable[[Any], Decimal]
    micros: Callable[[Any], int]


def _group(cells: Sequence[Any]) -> tuple[str | None, ...]:
    return tuple(None if v is None or v == "" else str(v) for v in cells)


def select_ranks(
    pick_: Picker,
    by: Sequence[str],
    sets: Sequence[tuple[str, ...]],
    ranks: Sequence[Rank],
    others: Sequence[Row],
    count: Count,
    read: Read,
    placeholder: str,
) -> list[CaseRanks] | None:
    """`others`: (k…, case id, kind, cost cells…) per part of a case not in the summary (a case's parts in a set's
    group are summed). None: an amount the summary cannot order exactly, or the ledger changed between reads."""
    n, w, value, add = len(by), pick_.width, pick_.value, pick_.add
    counted = count()
    if not all(int(r[-1]) for r in counted):
        return None
    plans = []
    conditions: list[str] = []
    params: list[Any] = []
    for keys in sets:
        at = [by.index(k) for k in keys]
        counts: dict[Key, dict[int, int]] = {}
        for r in counted:
            add_counts(counts, tuple(r[i] for i in at), int(r[n]), int(r[n + 1]))
        parts: dict[tuple[Key, Any], Any] = {}
        for r in others:
            case = (tuple(r[i] for i in at), (r[n], r[n + 1]))
            cost = value(r[n + 2 : n + 2 + w])
            parts[case] = add(parts[case], cost) if case in parts else cost
        values: dict[tuple[Key, int], list[Any]] = {}
        for (key, _), cost in parts.items():
            b = bin_of(pick_.micros(cost))
            add_counts(counts, key, b)
            values.setdefault((key, b), []).append(cost)
        located = locate(counts, ranks)
        wanted = needed(located)
        unread = [(key, b) for key, b in wanted if counts[key][b] > len(values.get((key, b), ()))]
        if unread:
            condition, more = in_pairs([f"k{i}" for i in at], unread, placeholder)
            conditions.append(f"({condition})")
            params += more
        plans.append((keys, at, counts, values, located, wanted))
    fetched: list[Row] = []
    if conditions:  # led by every bin read, so that the bins' index serves the whole condition
        bins = sorted({int(b) for plan in plans for _, b in plan[5]})
        among = f"b IN ({', '.join([f'CAST({placeholder} AS BIGINT)'] * len(bins))})"
        fetched = read(f"{among} AND ({' OR '.join(conditions)})", [*bins, *params])
    out: list[CaseRanks] = []
    for keys, at, counts, values, located, wanted in plans:
        for r in fetched:
            spot = (tuple(r[i] for i in at), int(r[n]))
            if spot in wanted:
                values.setdefault(spot, []).append(value(r[n + 1 : n + 1 + w]))
        held = {spot: counts[spot[0]][spot[1]] for spot in wanted}
        chosen = pick(located, values, held)
        if chosen is None:
            return None
        for key, (total, _) in located.items():
            at_money = {p: pick_.money(v) for p, v in chosen[key].items()}
            out.append(CaseRanks(keys, dict(zip(keys, _group(key), strict=True)), total, at_money))
    return out


MEASURES = ("c", "t", "n")  # a run's cost, tokens and calls


def select_runs(
    pick_: Picker, ranks: Sequence[Rank], others: Sequence[Row], count: Count, read: ReadRuns, placeholder: str
) -> list[RunStats] | None:
    """`others`: (k0, calls, tokens, cost cells…) per run not in the summary. None: as `select_ranks`."""
    w, value, add = pick_.width, pick_.value, pick_.add
    counted = count()
    if not all(int(r[-1]) for r in counted) or not all(int(r[-1]) for r in others):
        return None
    counts: dict[str, dict[Key, dict[int, int]]] = {m: {} for m in MEASURES}
    values: dict[str, dict[tuple[Key, int], list[Any]]] = {m: {} for m in MEASURES}
    totals: dict[Key, list[Any]] = {}  # k0 → [calls, cost]

    def total(k0: Key, calls: int, cost: Any) -> None:
        have = totals.get(k0)
        if have is None:
            totals[k0] = [calls, cost]
        else:
            have[0] += calls
            have[1] = add(have[1], cost)

    for r in counted:
        if r[0] == "c":
            total(r[1], int(r[4]), value(r[5 : 5 + w]))
        add_counts(counts[r[0]], r[1], int(r[2]), int(r[3]))
    for r in others:
        k0, calls, tokens, cost = r[0], int(r[1]), int(r[2]), value(r[3 : 3 + w])
        total(k0, calls, cost)
        for m, v, b in (("c", cost, bin_of(pick_.micros(cost))), ("t", tokens, bin_of(tokens)),
                        ("n", calls, bin_of(calls))):  # fmt: skip
            add_counts(counts[m], k0, b)
            values[m].setdefault((k0, b), []).append(v)
    located = {m: locate(counts[m], ranks) for m in MEASURES}
    wanted = {m: needed(located[m]) for m in MEASURES}
    for m in MEASURES:
        unread = []
        for k0, b in wanted[m]:
            have = values[m].setdefault((k0, b), [])
            missing = counts[m][k0][b] - len(have)
            if m != "c" and whole(b):
                have += [b] * missing  # tokens and calls below 1,000: the bin is the value
            elif missing:
                unread.append((k0, b))
        if not unread:
            continue
        condition, params = in_pairs(["k0"], (((k0,), b) for k0, b in unread), placeholder)
        for r in read(m, condition, params):
            spot = (r[0], int(r[1]))
            if spot in wanted[m]:
                values[m].setdefault(spot, []).append(value(r[2 : 2 + w]) if m == "c" else int(r[2]))
    chosen = {}
    for m in MEASURES:
        held = {spot: counts[m][spot[0]][spot[1]] for spot in wanted[m]}
        found = pick(located[m], values[m], held)
        if found is None:
            return None
        chosen[m] = found
    out: list[RunStats] = []
    for k0, (runs, _) in located["c"].items():
        calls, cost = totals[k0]
        out.append(
            RunStats(
                _group((k0,))[0], runs, calls, pick_.money(cost),
                {p: pick_.money(v) for p, v in chosen["c"][k0].items()}, chosen["t"][k0], chosen["n"][k0],
            )
        )  # fmt: skip
    return out
