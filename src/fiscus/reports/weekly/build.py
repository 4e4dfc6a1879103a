"""Build the weekly review from the ledger's spend queries and its per-case ranks (grouped and windowed, so the
spend and session rollups serve them)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fiscus.alerts import evaluate_alerts
from fiscus.ledger.base import MONEY_CONTEXT, Ledger, SpendQuery, SpendRow, regroup
from fiscus.ledger.cases import P50, P95, CaseRanks, Rank
from fiscus.policy.types import Policy, RunTarget
from fiscus.reports.cases import case_costs
from fiscus.reports.weekly.model import Anomaly, Line, WeeklyReport
from fiscus.reports.weekly.targets import Targets

WEEK = timedelta(days=7)
DUE = timedelta(hours=48)  # the seeds' resolution window for an anomaly's owner
DIMENSIONS = ("team", "workflow", "agent")  # product area, workflow, agent
PRIOR_WEEKS = 4  # weeks whose cases give the P50 / P95 when no target is set
MIN_PRIOR_CASES = 5
EFFICIENCY_FLAG = Decimal("1.25")  # cost per case up a quarter or more on at least…
MIN_CASES_FLAG = 5  # …this many cases
_PICO = Decimal("1E-12")
Key = str | None


def week_of(moment: datetime) -> tuple[str, datetime]:
    """The ISO week holding `moment` (UTC) and its Monday 00:00."""
    day = moment.astimezone(UTC).date()
    monday = day - timedelta(days=day.weekday())
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}", datetime(monday.year, monday.month, monday.day, tzinfo=UTC)


def last_complete_week(now: datetime) -> tuple[str, datetime]:
    return week_of(now - WEEK)


def parse_week(text: str) -> tuple[str, datetime]:
    """`2026-W49` → (that week, its Monday 00:00 UTC); `ValueError` otherwise."""
    year, _, week = text.strip().upper().partition("-W")
    monday = datetime.fromisocalendar(int(year), int(week), 1)
    return week_of(monday.replace(tzinfo=UTC))


def split_change(spend: Decimal, before: Decimal, cases: int, cases_before: int) -> tuple[Decimal, Decimal, str]:
    """(volume effect, efficiency effect, verdict). The volume effect is the change in cases at last week's cost
    per case; the efficiency effect is the rest, so the two add up to the change exactly. A rise carried by
    volume, cost per case steady or down, is success (the seeds: +40 % spend on +60 % volume)."""
    change = spend - before
    if not cases_before:
        return change, Decimal(0), "new" if spend else "flat"
    per_case = MONEY_CONTEXT.divide(before, Decimal(cases_before)).quantize(_PICO, context=MONEY_CONTEXT)
    volume = (per_case * (cases - cases_before)).quantize(_PICO, context=MONEY_CONTEXT)
    efficiency = change - volume
    if change < 0:
        verdict = "down"
    elif change == 0:
        verdict = "flat"
    else:
        verdict = "efficiency" if efficiency > 0 else "volume"
    return volume, efficiency, verdict


Ranked = dict[tuple[str | None, Key], CaseRanks]  # (dimension, group) → its cases


@dataclass(frozen=True, slots=True)
class _Cases:
    """The cases of this week, the week before and the prior weeks, per dimension and group: counted and ranked
    by the ledger (`Ledger.case_ranks`, one query per period for every dimension)."""

    now: Ranked
    before: Ranked
    prior: Ranked


def _read_cases(ledger: Ledger, by: Sequence[str], since: datetime) -> _Cases:
    sets: list[tuple[str, ...]] = [(), *((dim,) for dim in by)]

    def read(start: datetime, end: datetime, ranks: tuple[Rank, ...]) -> Ranked:
        found = ledger.case_ranks(SpendQuery(by=tuple(by), since=start, until=end), sets, ranks)
        return {(r.keys[0] if r.keys else None, r.group.get(r.keys[0]) if r.keys else None): r for r in found}

    return _Cases(
        read(since, since + WEEK, (P50, P95)), read(since - WEEK, since, ()),
        read(since - PRIOR_WEEKS * WEEK, since, (P50, P95)),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Spend:
    """The spend of this week by every dimension and day, and of the week before by every dimension: two
    queries, from which each line's grouping is summed (`regroup`) instead of a query per line."""

    now: list[SpendRow]
    before: list[SpendRow]

    @classmethod
    def read(cls, ledger: Ledger, by: Sequence[str], since: datetime) -> _Spend:
        now = ledger.spend(SpendQuery(by=(*by, "day"), since=since, until=since + WEEK))
        return cls(now, ledger.spend(SpendQuery(by=tuple(by), since=since - WEEK, until=since)))

    def of(self, by: tuple[str, ...], before: bool = False) -> list[SpendRow]:
        return regroup(self.before if before else self.now, by)


def _target(targets: Targets, dim: str | None, name: Key, prior: CaseRanks | None) -> RunTarget | None:
    if dim is not None and name is not None and name in targets.get(dim, {}):
        return targets[dim][name]
    if prior is None or prior.cases < MIN_PRIOR_CASES:
        return None
    return RunTarget(prior.value(P50), prior.value(P95), f"prior {PRIOR_WEEKS} weeks")


def _lines(spent: _Spend, dim: str | None, targets: Targets, read: _Cases) -> list[Line]:
    keys = (dim,) if dim else ()
    now_rows = {r.group.get(dim) if dim else None: r for r in spent.of(keys)}
    before_rows = {r.group.get(dim) if dim else None: r for r in spent.of(keys, before=True)}
    lines = []
    for key in sorted(set(now_rows) | set(before_rows), key=lambda k: (k is None, k or "")):
        row, old = now_rows.get(key), before_rows.get(key)
        spend = row.total_usd if row else Decimal(0)
        spent_before = old.total_usd if old else Decimal(0)
        these, those = read.now.get((dim, key)), read.before.get((dim, key))
        cases, cases_before = these.cases if these else 0, those.cases if those else 0
        volume, efficiency, verdict = split_change(spend, spent_before, cases, cases_before)
        target = _target(targets, dim, key, read.prior.get((dim, key)))
        lines.append(
            Line(
                dimension=dim or "all",
                name=key,
                spend=spend,
                spend_before=spent_before,
                cases=cases,
                cases_before=cases_before,
                calls=row.requests if row else 0,
                volume_effect=volume,
                efficiency_effect=efficiency,
                verdict=verdict,
                case_p50=these.value(P50) if these else None,
                case_p95=these.value(P95) if these else None,
                p50_target=target.p50 if target else None,
                p95_ceiling=target.p95 if target else None,
                target_source=target.source if target else None,
                cache_hit_rate=row.cache_hit_rate if row else Decimal(0),
                mean_input=Decimal(row.total_input_tokens) / row.requests if row and row.requests else None,
                mean_input_before=Decimal(old.total_input_tokens) / old.requests if old and old.requests else None,
            )
        )
    return sorted(lines, key=lambda line: (-line.spend, line.name or ""))


def _anomalies(lines: dict[str, list[Line]], policy: Policy, alerts: Sequence[Any], due: datetime) -> list[Anomaly]:
    out: list[Anomaly] = []
    for dim, group in lines.items():
        for line in group:
            if line.name is None:
                continue
            subject = f"{dim}={line.name}"
            owner = policy.owner_of({dim: line.name})
            if line.above_p95 and line.case_p95 is not None and line.p95_ceiling is not None:
                out.append(
                    Anomaly(
                        "above_p95",
                        subject,
                        f"P95 case cost ${line.case_p95.quantize(Decimal('0.0001'))} is above its ceiling "
                        f"${line.p95_ceiling.quantize(Decimal('0.0001'))} ({line.target_source})",
                        owner,
                        due,
                        "critical",
                    )
                )
            now, then = line.cost_per_case, line.cost_per_case_before
            if dim == "workflow" and now and then and line.cases >= MIN_CASES_FLAG and now >= then * EFFICIENCY_FLAG:
                out.append(
                    Anomaly(
                        "efficiency",
                        subject,
                        f"cost per case rose {((now / then - 1) * 100).quantize(Decimal(1))} % "
                        f"(${then.quantize(Decimal('0.0001'))} → ${now.quantize(Decimal('0.0001'))})",
                        owner,
                        due,
                    )
                )
    for alert in alerts:
        out.append(Anomaly(alert.signal, alert.subject_label, alert.message, alert.owner, due, str(alert.level)))
    return sorted(out, key=lambda a: (a.level != "critical", a.kind, a.subject))


def build_weekly(
    ledger: Ledger,
    policy: Policy,
    *,
    week: str,
    since: datetime,
    generated_at: datetime,
    targets: Targets,
    statuses: Iterable[Any] = (),
    by: Sequence[str] = DIMENSIONS,
) -> WeeklyReport:
    """The review of the week starting `since` (a Monday, UTC). Budget `statuses` feed the budget alerts."""
    until = since + WEEK
    dims = SpendQuery(by=tuple(by)).by  # canonical names
    read = _read_cases(ledger, dims, since)
    spent = _Spend.read(ledger, dims, since)
    found = _lines(spent, None, targets, read)
    total = found[0] if found else Line("all", None, Decimal(0), Decimal(0), 0, 0, 0, Decimal(0), Decimal(0), "flat")
    lines = {dim: _lines(spent, dim, targets, read) for dim in dims}
    moment = min(until, generated_at)
    alerts = evaluate_alerts(ledger, statuses, policy, moment)
    anomalies = _anomalies(lines, policy, alerts, generated_at + DUE)
    movers = sorted(
        (line for group in lines.values() for line in group if line.change and line.name is not None),
        key=lambda line: (-abs(line.change), line.dimension, line.name or ""),
    )[:5]
    totals = spent.of(())
    daily = [(str(r.group["day"]), r.total_usd) for r in spent.of(("day",))]
    notes = [
        "Weeks are ISO weeks in UTC. A case is a session; a call outside any session is a case of its own.",
        "Targets: the policy's, else the forecast/model file's, else P50 / P95 of the cases of the "
        f"{PRIOR_WEEKS} weeks before (at least {MIN_PRIOR_CASES} cases).",
    ]
    return WeeklyReport(
        week=week,
        since=since,
        until=until,
        generated_at=generated_at,
        total=total,
        lines=lines,
        anomalies=anomalies,
        movers=movers,
        cases=case_costs(ledger, by=("workflow",), since=since, until=until),
        daily=daily,
        cache_target=policy.cache_hit_target,
        saved_usd=totals[0].saved.total if totals else Decimal(0),
        ungoverned_usd=totals[0].ungoverned_usd if totals else Decimal(0),
        notes=notes,
    )
