"""Cost per outcome per case. A case is one session (a ticket, a lead, a research task) — a call outside any
session is a case of its own, as a run is in `forecast` — and its outcome is the latest one attached to the
session (SDK `session.outcome = …`, the admin API, `x-fiscus-outcome` on a call), else what its calls say.

Per group: how many cases reached each outcome, what those cases cost, and the cost per outcome: the group's
whole spend over the cases that reached it (what one resolved case costs, the failed attempts included). Cases
with no outcome are counted apart. The ledger counts the cases (`Ledger.case_tallies`: inside the database, from
the session rollup).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from fiscus.ledger.base import MONEY_CONTEXT, Ledger, SpendQuery
from fiscus.reports.spend import dec

NO_OUTCOME = "(no outcome)"
_PICO = Decimal("1E-12")
_add = MONEY_CONTEXT.add


def per_case(total: Decimal, cases: int) -> Decimal:
    """`total` over `cases`, to the pico-dollar (sums stay exact; a quotient has no exact decimal form)."""
    if not cases:
        return Decimal(0)
    return MONEY_CONTEXT.divide(total, Decimal(cases)).quantize(_PICO, context=MONEY_CONTEXT)


@dataclass(slots=True)
class OutcomeCases:
    """The cases of one group that reached one outcome (or none)."""

    outcome: str
    cases: int = 0
    cost: Decimal = Decimal(0)  # of these cases alone

    def to_dict(self, group_cost: Decimal) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "cases": self.cases,
            "cost_usd": dec(self.cost),
            "avg_case_usd": dec(per_case(self.cost, self.cases)),
            "cost_per_outcome_usd": dec(per_case(group_cost, self.cases)),
        }


@dataclass(slots=True)
class CaseGroup:
    group: dict[str, str | None]
    outcomes: dict[str, OutcomeCases] = field(default_factory=dict)
    unlabelled: OutcomeCases = field(default_factory=lambda: OutcomeCases(NO_OUTCOME))

    @property
    def cases(self) -> int:
        return sum(o.cases for o in self.outcomes.values()) + self.unlabelled.cases

    @property
    def cost(self) -> Decimal:
        total = self.unlabelled.cost
        for o in self.outcomes.values():
            total = _add(total, o.cost)
        return total

    @property
    def cost_per_case(self) -> Decimal:
        return per_case(self.cost, self.cases)

    def cost_per_outcome(self) -> dict[str, Decimal]:
        """The group's whole spend over the cases that reached each outcome."""
        total = self.cost
        return {label: per_case(total, o.cases) for label, o in sorted(self.outcomes.items()) if o.cases}

    def add(self, outcome: str | None, cost: Decimal, cases: int = 1) -> None:
        target = self.unlabelled if outcome is None else self.outcomes.setdefault(outcome, OutcomeCases(outcome))
        target.cases += cases
        target.cost = _add(target.cost, cost)

    def merge(self, other: CaseGroup) -> None:
        for label, o in other.outcomes.items():
            self.add(label, o.cost, o.cases)
        self.add(None, other.unlabelled.cost, other.unlabelled.cases)

    def to_dict(self) -> dict[str, Any]:
        total = self.cost
        return {
            "group": dict(self.group),
            "cases": self.cases,
            "cost_usd": dec(total),
            "cost_per_case_usd": dec(self.cost_per_case),
            "outcomes": [self.outcomes[k].to_dict(total) for k in sorted(self.outcomes)],
            "no_outcome": {"cases": self.unlabelled.cases, "cost_usd": dec(self.unlabelled.cost)},
        }


def case_costs(
    ledger: Ledger,
    *,
    by: Sequence[str] = ("workflow",),
    since: datetime | None = None,
    until: datetime | None = None,
    where: Mapping[str, str] | None = None,
) -> list[CaseGroup]:
    """Cases grouped by `by` (dearest groups first). A session whose calls fall in several groups counts once,
    in the group of its dearest part, with its whole cost (`Ledger.case_tallies`)."""
    keys = SpendQuery(by=tuple(by)).by  # canonical names (`model` → `served_model`)
    query = SpendQuery(by=keys, since=since, until=until, where=dict(where or {}))
    groups: dict[tuple[str | None, ...], CaseGroup] = {}
    for tally in ledger.case_tallies(query):
        key = tuple(tally.group.get(k) for k in keys)
        found = groups.get(key)
        if found is None:
            found = groups[key] = CaseGroup(group=dict(zip(keys, key, strict=True)))
        found.add(tally.outcome, tally.cost, tally.cases)
    return sorted(groups.values(), key=lambda g: (-g.cost, tuple(v or "" for v in g.group.values())))
