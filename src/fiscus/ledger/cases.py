"""Per-case aggregates of the ledger: what cost per outcome, the weekly review, the session-cost alert and the
forecast ask of sessions, answered as a few rows per group instead of a row per session.

A case (a run, for the forecast) is a session; a call outside any session is a case of its own. SQL ledgers
answer these in one query over the session rollup (`fiscus.ledger.case_sql`); the functions here answer them
from `Ledger.session_spend` and the calls outside sessions, as any ledger can: the reference the SQL is checked
against, and the answer when a query cannot use the rollup.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

from fiscus.ledger.base import MONEY_CONTEXT, SessionSpend, SpendQuery, cost_total, event_key

if TYPE_CHECKING:
    from fiscus.events.cost_event import CostEvent
    from fiscus.ledger.base import Ledger

Group = tuple[str | None, ...]


@dataclass(frozen=True, slots=True)
class Rank:
    """A 1-based position among n values sorted ascending: max((a·n + b) // c, 1). Integer arithmetic, so SQL
    and Python pick the same value."""

    a: int
    b: int
    c: int

    def __post_init__(self) -> None:
        if self.a < 1 or self.b < 0 or self.c < 1:
            raise ValueError(f"not a rank: ({self.a}·n + {self.b}) // {self.c}")

    @classmethod
    def nearest(cls, q: float | str) -> Rank:
        """The nearest-rank `q` percentile: the smallest value with at least `q` of them at or below it."""
        f = Fraction(str(q))
        if not 0 < f <= 1:
            raise ValueError(f"a percentile is in (0, 1], got {q}")
        return cls(f.numerator, f.denominator - 1, f.denominator)  # ceil(q·n)

    def position(self, n: int) -> int:
        return max((self.a * n + self.b) // self.c, 1)

    def sql(self, n: str) -> str:
        """The position as SQL over the integer count `n` (at least 1 whenever n is)."""
        return f"(({self.a} * {n} + {self.b}) / {self.c})"


P50, P95 = Rank.nearest("0.5"), Rank.nearest("0.95")
LOW_MEDIAN, HIGH_MEDIAN = Rank(1, 1, 2), Rank(1, 2, 2)  # the two middle values (one when n is odd)


def median(ranked: CaseRanks) -> Decimal:
    """The median case cost, as `statistics.median` gives it from the sorted costs."""
    low, high = ranked.value(LOW_MEDIAN), ranked.value(HIGH_MEDIAN)
    return low if ranked.cases % 2 else (low + high) / 2


@dataclass(frozen=True, slots=True)
class CaseTally:
    """The cases of one group that reached one outcome (None: none recorded nor carried by their calls)."""

    group: dict[str, str | None]
    outcome: str | None
    cases: int
    cost: Decimal


@dataclass(frozen=True, slots=True)
class CaseRanks:
    """One group's cases (grouped by `keys`): how many, and the cost at each asked position."""

    keys: tuple[str, ...]
    group: dict[str, str | None]
    cases: int
    at: dict[int, Decimal]

    def value(self, rank: Rank) -> Decimal:
        return self.at[rank.position(self.cases)]


@dataclass(frozen=True, slots=True)
class RunStats:
    """One group's runs (each in its first call's group): count, calls and cost in all, and the cost, tokens and
    calls of a run at each asked position."""

    group: str | None
    runs: int
    calls: int
    cost: Decimal
    cost_at: dict[int, Decimal]
    tokens_at: dict[int, int]
    calls_at: dict[int, int]


def positions(n: int, ranks: Iterable[Rank]) -> set[int]:
    return {1, *(r.position(n) for r in ranks)}


def _group(row: SessionSpend, keys: Sequence[str]) -> Group:
    return tuple(row.group.get(k) for k in keys)


def _names(key: Group) -> tuple[str, ...]:
    return tuple(v or "" for v in key)


@dataclass(slots=True)
class _Session:
    cost: Decimal = Decimal(0)
    parts: dict[Group, Decimal] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)


def tallies_from(ledger: Ledger, query: SpendQuery, *, scan: bool) -> list[CaseTally]:
    """Cases per (group, outcome). A session counts once, in the group of its dearest part (ties: the first by
    name), with its whole cost; its outcome is the latest recorded, else the label most of its calls carry
    (ties: the first by name). A call outside any session is a case with its own outcome."""
    add, keys = MONEY_CONTEXT.add, query.by
    found: dict[tuple[Group, str | None], list[object]] = {}

    def count(key: Group, outcome: str | None, cases: int, cost: Decimal) -> None:
        have = found.setdefault((key, outcome), [0, Decimal(0)])
        have[0] = int(have[0]) + cases  # type: ignore[call-overload]
        have[1] = add(have[1], cost)  # type: ignore[arg-type]

    sessions: dict[str, _Session] = {}
    for row in ledger.session_spend(query, scan=scan):
        key = _group(row, keys)
        if row.session is None:
            count(key, row.outcome, row.calls, row.cost)
            continue
        s = sessions.setdefault(row.session, _Session())
        s.cost = add(s.cost, row.cost)
        s.parts[key] = add(s.parts.get(key, Decimal(0)), row.cost)
        if row.outcome is not None:
            s.labels[row.outcome] = s.labels.get(row.outcome, 0) + row.calls
    recorded = ledger.outcomes(sessions) if sessions else {}
    for name, s in sessions.items():
        home = min(s.parts, key=lambda k: (-s.parts[k], _names(k)))
        label = min(s.labels, key=lambda o: (-s.labels[o], o)) if s.labels else None
        count(home, recorded.get(name) or label, 1, s.cost)
    return [
        CaseTally(dict(zip(keys, key, strict=True)), outcome, int(v[0]), v[1])  # type: ignore[call-overload, arg-type]
        for (key, outcome), v in found.items()
    ]


def _singles(ledger: Ledger, query: SpendQuery) -> Iterable[CostEvent]:
    return ledger.single_calls(since=query.since, until=query.until, where=query.where)


def ranks_from(
    ledger: Ledger,
    query: SpendQuery,
    sets: Sequence[tuple[str, ...]],
    ranks: Sequence[Rank],
    *,
    scan: bool,
    singles: bool = True,
) -> list[CaseRanks]:
    """Per set of keys (each a subset of `query.by`) and group: the cases — a session counted in every group it
    has calls in, with the cost of those calls; a call outside any session on its own — and their cost at each
    rank (without `singles`, the sessions only)."""
    add = MONEY_CONTEXT.add
    rows = [r for r in ledger.session_spend(query, scan=scan, outcomes=False) if r.session is not None]
    alone = _singles(ledger, query) if singles else ()
    calls = [(tuple(event_key(e, k) for k in query.by), cost_total(e)) for e in alone]
    out: list[CaseRanks] = []
    for keys in sets:
        at = [query.by.index(k) for k in keys]
        costs: dict[tuple[Group, str], Decimal] = {}
        for r in rows:
            case = (_group(r, keys), r.session or "")
            costs[case] = add(costs.get(case, Decimal(0)), r.cost)
        per_group: dict[Group, list[Decimal]] = {}
        for (key, _), cost in costs.items():
            per_group.setdefault(key, []).append(cost)
        for full, cost in calls:
            per_group.setdefault(tuple(full[i] for i in at), []).append(cost)
        for key, values in per_group.items():
            values.sort()
            chosen = {p: values[p - 1] for p in positions(len(values), ranks)}
            out.append(CaseRanks(keys, dict(zip(keys, key, strict=True)), len(values), chosen))
    return out


@dataclass(slots=True)
class _Run:
    first: datetime
    group: str | None
    cost: Decimal = Decimal(0)
    tokens: int = 0
    calls: int = 0


def runs_from(ledger: Ledger, query: SpendQuery, ranks: Sequence[Rank], *, scan: bool) -> list[RunStats]:
    """Per group of `query.by[0]`: the runs, each session in the group of its first call (ties: the first by
    name), each call outside a session a run of its own."""
    (by,) = query.by
    add = MONEY_CONTEXT.add
    runs: dict[str, _Run] = {}
    for part in ledger.session_spend(query, scan=scan, outcomes=False):
        if part.session is None:
            continue
        group = part.group.get(by)
        run = runs.get(part.session)
        if run is None:
            run = runs[part.session] = _Run(part.first, group)
        elif (part.first, group or "") < (run.first, run.group or ""):
            run.first, run.group = part.first, group
        run.cost = add(run.cost, part.cost)
        run.tokens += part.tokens
        run.calls += part.calls
    grouped: dict[str | None, list[tuple[Decimal, int, int]]] = {}
    for run in runs.values():
        grouped.setdefault(run.group, []).append((run.cost, run.tokens, run.calls))
    for e in _singles(ledger, query):
        grouped.setdefault(event_key(e, by), []).append((cost_total(e), e.usage.total_tokens, 1))
    return [stats_of(group, values, ranks) for group, values in grouped.items()]


def stats_of(group: str | None, runs: Sequence[tuple[Decimal, int, int]], ranks: Sequence[Rank]) -> RunStats:
    """`RunStats` of (cost, tokens, calls) per run."""
    n = len(runs)
    at = positions(n, ranks)
    costs, tokens, calls = (sorted(r[i] for r in runs) for i in range(3))
    total = Decimal(0)
    for cost in costs:
        total = MONEY_CONTEXT.add(total, cost)
    return RunStats(
        group, n, sum(calls), total,
        {p: costs[p - 1] for p in at}, {p: tokens[p - 1] for p in at}, {p: calls[p - 1] for p in at},  # type: ignore[misc]
    )  # fmt: skip


def costs_from(
    ledger: Ledger, query: SpendQuery, sessions: Iterable[str], *, scan: bool
) -> dict[tuple[Group, str], Decimal]:
    """The cost of each of `sessions` per group of `query.by` in the window."""
    wanted, add = set(sessions), MONEY_CONTEXT.add
    out: dict[tuple[Group, str], Decimal] = {}
    for r in ledger.session_spend(query, scan=scan, outcomes=False):
        if r.session is not None and r.session in wanted:
            case = (_group(r, query.by), r.session)
            out[case] = add(out.get(case, Decimal(0)), r.cost)
    return out
