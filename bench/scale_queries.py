"""The queries bench/ledger_scale.py times: every query `fiscus report`, the weekly review (`fiscus report weekly`
and the alerts it runs), the dashboard (GET /admin/finance) and `fiscus forecast` make, each answered the fast way
(rollups) and as a full scan of the events, with a normal form of each answer to check the two are the same."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fiscus.ledger import Ledger, SpendQuery, SpendRow
from fiscus.ledger.base import SessionSpend
from fiscus.ledger.cases import HIGH_MEDIAN, LOW_MEDIAN, P50, P95, CaseRanks, CaseTally, Rank
from fiscus.policy.types import Policy
from fiscus.reports.cases import case_costs
from fiscus.reports.finance import finance_summary, month_start
from fiscus.reports.forecast import forecast, ledger_runs
from fiscus.reports.weekly.build import DIMENSIONS, PRIOR_WEEKS, WEEK, build_weekly, week_of

DAY, HOUR = timedelta(days=1), timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Check:
    label: str
    fast: Callable[[], Any]
    slow: Callable[[], Any] | None  # None: a whole report, timed only (its queries are checked one by one)
    normal: Callable[[Any], Any] = lambda x: x


def _spend(rows: list[SpendRow]) -> list[tuple[Any, ...]]:
    return sorted(
        (sorted((k, v or "") for k, v in r.group.items()), r.requests, r.input_tokens, r.cache_read_tokens,
         r.output_tokens, r.total_usd, sorted(r.statuses.items()), sorted(r.outcomes.items()))
        for r in rows
    )  # fmt: skip


def _ranks(rows: list[CaseRanks]) -> list[tuple[Any, ...]]:
    return sorted((r.keys, repr(sorted(r.group.items())), r.cases, sorted((p, v.normalize()) for p, v in r.at.items()))
                  for r in rows)  # fmt: skip


class Scanning:
    """A ledger whose spend and session spend always scan the events (the baseline for whole reports)."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)

    def spend(self, query: SpendQuery, *, scan: bool = False) -> list[SpendRow]:
        return self._ledger.spend(query, scan=True)

    def session_spend(self, query: SpendQuery, *, scan: bool = False, outcomes: bool = True) -> list[SessionSpend]:
        return self._ledger.session_spend(query, scan=True, outcomes=outcomes)

    def case_tallies(self, query: SpendQuery, *, scan: bool = False) -> list[CaseTally]:
        return self._ledger.case_tallies(query, scan=True)

    def case_ranks(
        self, query: SpendQuery, sets: Any, ranks: Any, *, scan: bool = False, singles: bool = True
    ) -> list[CaseRanks]:
        return self._ledger.case_ranks(query, sets, ranks, scan=True, singles=singles)


def checks(ledger: Ledger, end: datetime) -> list[Check]:
    """`end` is "now" (mid-hour); the weekly review is of the last complete ISO week."""
    week = end - timedelta(days=7)
    month = month_start(end)
    label, monday = week_of(end - WEEK)
    scan = Scanning(ledger)

    def spend(q: SpendQuery) -> tuple[Callable[[], Any], Callable[[], Any], Callable[[Any], Any]]:
        return (lambda: ledger.spend(q)), (lambda: ledger.spend(q, scan=True)), _spend

    def sessions(
        q: SpendQuery, sets: list[tuple[str, ...]], ranks: tuple[Rank, ...], singles: bool = True
    ) -> tuple[Callable[[], Any], Callable[[], Any], Callable[[Any], Any]]:
        # As the weekly review and the session-cost alert ask: cases counted and ranked per group.
        return (
            lambda: ledger.case_ranks(q, sets, ranks, singles=singles),
            lambda: ledger.case_ranks(q, sets, ranks, scan=True, singles=singles),
            _ranks,
        )

    def cases(since: datetime) -> tuple[Callable[[], Any], Callable[[], Any], Callable[[Any], Any]]:
        def run(led: Any) -> Any:
            return [g.to_dict() for g in case_costs(led, by=("workflow",), since=since, until=end)]

        return (lambda: run(ledger)), (lambda: run(scan)), lambda x: x

    def runs(by: str, days: int) -> tuple[Callable[[], Any], Callable[[], Any], Callable[[Any], Any]]:
        since = end - timedelta(days=days)
        return (
            lambda: forecast(ledger_runs(ledger, by, since=since, until=end), by=by).to_dict(),
            lambda: forecast(ledger.events(since=since, until=end), by=by).to_dict(),
            lambda x: x,
        )

    dims = DIMENSIONS
    sets: list[tuple[str, ...]] = [(), *((d,) for d in dims)]
    found = [
        ("report: all time --by team", spend(SpendQuery(by=("team",)))),
        ("report --since 30d --by agent,model", spend(SpendQuery(by=("agent", "model"), since=end - 30 * DAY))),
        ("report --since 7d --by day", spend(SpendQuery(by=("day",), since=week, until=end))),
        ("report --where team=growth --since 90d --by tenant",
         spend(SpendQuery(by=("tenant",), where={"team": "growth"}, since=end - 90 * DAY, until=end))),
        ("report: cases --since 30d --by agent", (
            lambda: [g.to_dict() for g in case_costs(ledger, by=("agent",), since=end - 30 * DAY, until=end)],
            lambda: [g.to_dict() for g in case_costs(scan, by=("agent",), since=end - 30 * DAY, until=end)],
            lambda x: x)),
        ("weekly: the week --by workflow", spend(SpendQuery(by=("workflow",), since=monday, until=monday + WEEK))),
        ("weekly: week before --by agent", spend(SpendQuery(by=("agent",), since=monday - WEEK, until=monday))),
        ("weekly: the week --by day", spend(SpendQuery(by=("day",), since=monday, until=monday + WEEK))),
        ("weekly: case P50/P95 of the week by team,workflow,agent",
         sessions(SpendQuery(by=dims, since=monday, until=monday + WEEK), sets, (P50, P95))),
        (f"weekly: case P50/P95 of {PRIOR_WEEKS} prior weeks by team,…",
         sessions(SpendQuery(by=dims, since=monday - PRIOR_WEEKS * WEEK, until=monday), sets, (P50, P95))),
        ("weekly: cost per outcome by workflow", cases(monday)),
        ("alerts: hourly spend, 7 days --by hour", spend(SpendQuery(by=("hour",), since=end - 7 * DAY - HOUR,
                                                                    until=end - HOUR))),
        ("alerts: median session, 7 days by task_class",
         sessions(SpendQuery(by=("task_class",), since=end - 7 * DAY, until=end), [("task_class",)],
                  (LOW_MEDIAN, HIGH_MEDIAN), singles=False)),
        ("dashboard: today / 7 days / month to date, total", spend(SpendQuery(since=month, until=end))),
        ("dashboard: month to date --by workflow", spend(SpendQuery(by=("workflow",), since=month, until=end))),
        ("dashboard: cost per outcome, month to date", cases(month)),
        ("dashboard: 30d --by day,team", spend(SpendQuery(by=("day", "team"), since=end - 30 * DAY, until=end))),
        ("forecast --since 7d --by task_class", runs("task_class", 7)),
        ("forecast --since 30d --by workflow", runs("workflow", 30)),
    ]  # fmt: skip
    out = [Check(name, fast, slow, normal) for name, (fast, slow, normal) in found]
    policy = Policy()
    out.append(Check(f"whole weekly review {label} (all its queries)", lambda: build_weekly(
        ledger, policy, week=label, since=monday, generated_at=end, targets={}), None))  # fmt: skip
    out.append(Check("whole dashboard summary (all its queries)", lambda: finance_summary(
        ledger, policy, statuses=[], alerts=[], now=end), None))  # fmt: skip
    return out
