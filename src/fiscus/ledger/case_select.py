"""Case ranks and run statistics picked in Python from one sorted read of the case summary.

Window functions rank a partition by sorting it, once per set of keys and measure: ranking four weeks of sessions
for four sets of keys took 2-7 s at 10M events (SQLite about 1.5 µs per row and partition; PostgreSQL sorts
spilling to disk). Sorting once by cost in SQL and walking the rows here puts every group's costs in order at once
(a group's share of a sorted list is sorted); the few cases not in the summary (sessions crossing the window's
bounds, calls outside sessions) are put in place by bisection. Costs are compared exactly: SQLite's limbs as
integer atto-dollars (`fiscus.ledger.limbs`), PostgreSQL's NUMERIC as Decimal.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fiscus.ledger.cases import CaseRanks, Rank, RunStats, positions

Row = Sequence[Any]


@dataclass(frozen=True, slots=True)
class Picker:
    """A backend's cost cells as an exactly ordered value (`value`), their exact sum (`add`) and the amount back."""

    width: int  # cost cells per row
    value: Callable[[Sequence[Any]], Any]
    add: Callable[[Any, Any], Any]
    money: Callable[[Any], Decimal]


def _group(cells: Sequence[Any]) -> tuple[str | None, ...]:
    return tuple(None if v is None or v == "" else str(v) for v in cells)


def select_ranks(
    pick: Picker,
    by: Sequence[str],
    sets: Sequence[tuple[str, ...]],
    ranks: Sequence[Rank],
    summary: Sequence[Row],
    others: Sequence[Row],
) -> list[CaseRanks]:
    """`summary`: (k…, cost cells…) per summary session, sorted by cost; `others`: (k…, case id, kind, cost
    cells…) per part of a case not in the summary (a case's parts in a set's group are summed)."""
    n, w, value, add = len(by), pick.width, pick.value, pick.add
    out: list[CaseRanks] = []
    for keys in sets:
        at = [by.index(k) for k in keys]
        groups: dict[tuple[Any, ...], list[Any]] = {}
        if at:
            for r in summary:
                key = tuple(r[i] for i in at)
                have = groups.get(key)
                if have is None:
                    groups[key] = [value(r[n : n + w])]
                else:
                    have.append(value(r[n : n + w]))
        elif summary:
            groups[()] = [value(r[n : n + w]) for r in summary]
        parts: dict[tuple[tuple[Any, ...], Any], Any] = {}
        for r in others:
            case = (tuple(r[i] for i in at), (r[n], r[n + 1]))
            cost = value(r[n + 2 : n + 2 + w])
            parts[case] = add(parts[case], cost) if case in parts else cost
        for (key, _), cost in parts.items():
            insort(groups.setdefault(key, []), cost)
        for key, costs in groups.items():
            chosen = {p: pick.money(costs[p - 1]) for p in positions(len(costs), ranks)}
            out.append(CaseRanks(keys, dict(zip(keys, _group(key), strict=True)), len(costs), chosen))
    return out


def select_runs(pick: Picker, ranks: Sequence[Rank], runs: Sequence[Row]) -> list[RunStats]:
    """`runs`: (k0, calls, tokens, cost cells…) per run, in any order."""
    grouped: dict[Any, tuple[list[Any], list[int], list[int]]] = {}
    w, value = pick.width, pick.value
    for r in runs:
        k0, calls, tokens = r[0], r[1], r[2]
        have = grouped.get(k0)
        if have is None:
            have = grouped[k0] = ([], [], [])
        have[0].append(value(r[3 : 3 + w]))
        have[1].append(int(tokens))
        have[2].append(int(calls))
    out: list[RunStats] = []
    for k0, (costs, tokens, calls) in grouped.items():
        for values in (costs, tokens, calls):
            values.sort()
        at = positions(len(costs), ranks)
        total = costs[0]
        for cost in costs[1:]:
            total = pick.add(total, cost)
        out.append(
            RunStats(
                _group((k0,))[0],
                len(costs),
                sum(calls),
                pick.money(total),
                {p: pick.money(costs[p - 1]) for p in at},
                {p: tokens[p - 1] for p in at},
                {p: calls[p - 1] for p in at},
            )
        )
    return out
