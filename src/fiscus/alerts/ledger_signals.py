"""The signals read from the ledger: hourly spend, cache misses, session cost and context growth. Each asks the
ledger's spend query (grouped, windowed), so a rollup behind it serves the checks as well."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal

from fiscus.alerts.levels import decimal_median, level_above, level_at_least, money, percent, times
from fiscus.events.alert_events import AlertRaised, Level
from fiscus.ledger.base import Ledger, SpendQuery, SpendRow, regroup
from fiscus.ledger.cases import HIGH_MEDIAN, LOW_MEDIAN, median
from fiscus.policy.alerts import CacheMiss, ContextGrowth, HourlySpend, SessionCost

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
Owner = Callable[[dict[str, str]], str | None]


def hour_id(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H")


def day_id(now: datetime) -> str:
    return now.strftime("%Y-%m-%d")


def _end_of(now: datetime, span: timedelta) -> float:
    return (now + span + DAY).timestamp()


def _alert(
    signal: str,
    hit: tuple[Level, Decimal],
    subject: tuple[tuple[str, str], ...],
    value: Decimal,
    message: str,
    window: str,
    expires_at: float,
    owner: Owner,
    now: datetime,
    detail: dict[str, str],
) -> AlertRaised:
    level, limit = hit
    return AlertRaised(
        signal=signal,
        level=level,
        subject=subject,
        value=value,
        limit=limit,
        message=f"{message} ({level})",
        window=window,
        expires_at=expires_at,
        owner=owner(dict(subject)),
        detail=detail,
        timestamp=now,
    )


def _label(subject: tuple[tuple[str, str], ...]) -> str:
    return " for " + " ".join(f"{k}={v}" for k, v in subject) if subject else ""


def hourly_spend(ledger: Ledger, settings: HourlySpend, now: datetime, owner: Owner) -> list[AlertRaised]:
    """Spend in the last hour against the median hourly spend (hours with spend) of the days before."""
    start = now - HOUR
    baseline_start = start - timedelta(days=settings.baseline_days)
    out: list[AlertRaised] = []
    # The total's hours are summed from the first dimension's (`regroup`): one read of the baseline's hours less.
    first = tuple(settings.per[:1])
    first_current = ledger.spend(SpendQuery(by=first, since=start, until=now))
    first_past = ledger.spend(SpendQuery(by=("hour", *first), since=baseline_start, until=start))
    for dims in ((), *((d,) for d in settings.per)):
        if dims == first or not dims:
            current, past = regroup(first_current, dims), regroup(first_past, ("hour", *dims))
        else:
            current = ledger.spend(SpendQuery(by=dims, since=start, until=now))
            past = ledger.spend(SpendQuery(by=("hour", *dims), since=baseline_start, until=start))
        hours: dict[tuple[str | None, ...], list[Decimal]] = {}
        for row in past:
            if row.total_usd > 0:
                hours.setdefault(tuple(row.group.get(d) for d in dims), []).append(row.total_usd)
        for row in current:
            key = tuple(row.group.get(d) for d in dims)
            if any(v is None for v in key):
                continue  # calls without the dimension are in the total already
            history = hours.get(key, [])
            if len(history) < settings.min_history_hours:
                continue
            baseline = decimal_median(history)
            if baseline <= 0:
                continue
            ratio = row.total_usd / baseline
            hit = level_at_least(settings, ratio)
            if hit is None:
                continue
            subject = tuple((d, str(v)) for d, v in zip(dims, key, strict=True))
            message = (
                f"Spend in the last hour{_label(subject)} is {money(row.total_usd)}, {times(ratio)} the usual "
                f"hour ({money(baseline)}, the median of the last {settings.baseline_days} days)"
            )
            detail = {"spend_usd": format(row.total_usd, "f"), "baseline_usd": format(baseline, "f")}
            out.append(
                _alert(
                    "hourly_spend", hit, subject, ratio, message, hour_id(now), _end_of(now, HOUR), owner, now, detail
                )
            )
    return out


def cache_miss(ledger: Ledger, settings: CacheMiss, now: datetime, owner: Owner) -> list[AlertRaised]:
    """Share of input not read from cache, per workflow where caching is expected."""
    start = now - timedelta(minutes=settings.window_minutes)
    past = ledger.spend(SpendQuery(by=("workflow",), since=start - timedelta(days=settings.baseline_days), until=start))
    expected = set(settings.expected) | {
        str(r.group["workflow"]) for r in past if r.group.get("workflow") and r.cache_read_tokens > 0
    }
    out: list[AlertRaised] = []
    for row in ledger.spend(SpendQuery(by=("workflow",), since=start, until=now)):
        workflow = row.group.get("workflow")
        if workflow is None or workflow not in expected or row.requests < settings.min_requests:
            continue
        if not row.total_input_tokens:
            continue
        miss = 1 - row.cache_hit_rate
        hit = level_above(settings, miss)
        if hit is None:
            continue
        subject = (("workflow", workflow),)
        message = (
            f"{percent(miss)} of the input of workflow {workflow} was not read from the prompt cache in the last "
            f"{settings.window_minutes} minutes (caching is expected there)"
        )
        detail = {"miss_rate": format(miss.quantize(Decimal("0.0001")), "f"), "requests": str(row.requests)}
        out.append(
            _alert("cache_miss", hit, subject, miss, message, hour_id(now), _end_of(now, HOUR), owner, now, detail)
        )
    return out


def session_cost(ledger: Ledger, settings: SessionCost, now: datetime, owner: Owner) -> list[AlertRaised]:
    """Sessions active in the last hour that cost a multiple of their task class's median session."""
    # The ledger ranks each task class's sessions over the baseline days (inside the database, from the session
    # rollup); only the sessions active in the last hour are read one by one.
    period = SpendQuery(by=("task_class",), since=now - timedelta(days=settings.baseline_days), until=now)
    medians = {
        r.group.get("task_class"): (r.cases, median(r))
        for r in ledger.case_ranks(period, [("task_class",)], (LOW_MEDIAN, HIGH_MEDIAN), singles=False)
    }
    active = {r.session for r in ledger.session_spend(SpendQuery(since=now - HOUR, until=now), outcomes=False)}
    costs = ledger.session_costs(period, sorted(s for s in active if s is not None)) if active else {}
    by_class: dict[str | None, list[tuple[str, Decimal]]] = {}
    for ((task_class,), session_id), cost in sorted(costs.items(), key=lambda i: (-i[1], i[0][0][0] or "", i[0][1])):
        by_class.setdefault(task_class, []).append((session_id, cost))
    out: list[AlertRaised] = []
    for task_class, sessions in by_class.items():
        count, typical = medians.get(task_class, (0, Decimal(0)))
        if count < settings.min_sessions or typical <= 0:
            continue
        for session, session_usd in sessions:
            ratio = session_usd / typical
            hit = level_at_least(settings, ratio)
            if hit is None:
                continue
            cls = task_class or "(none)"
            subject = (("task_class", cls), ("session", session))
            message = (
                f"Session {session} has cost {money(session_usd)}, {times(ratio)} the median session of task "
                f"class {cls} ({money(typical)})"
            )
            detail = {"session_usd": format(session_usd, "f"), "median_usd": format(typical, "f")}
            expires = (now + timedelta(days=settings.baseline_days)).timestamp()
            out.append(
                _alert("session_cost", hit, subject, ratio, message, f"session:{session}", expires, owner, now, detail)
            )
    return out


def _mean_input(row: SpendRow) -> Decimal:
    return Decimal(row.total_input_tokens) / Decimal(row.requests)


def context_growth(ledger: Ledger, settings: ContextGrowth, now: datetime, owner: Owner) -> list[AlertRaised]:
    """Mean input tokens per call of each workflow over the last day against the days before."""
    start = now - DAY
    past = {
        r.group.get("workflow"): r
        for r in ledger.spend(
            SpendQuery(by=("workflow",), since=start - timedelta(days=settings.baseline_days), until=start)
        )
    }
    out: list[AlertRaised] = []
    for row in ledger.spend(SpendQuery(by=("workflow",), since=start, until=now)):
        workflow = row.group.get("workflow")
        before = past.get(workflow)
        if workflow is None or before is None:
            continue
        if min(row.requests, before.requests) < settings.min_requests or not before.total_input_tokens:
            continue
        ratio = _mean_input(row) / _mean_input(before)
        hit = level_at_least(settings, ratio)
        if hit is None:
            continue
        subject = (("workflow", workflow),)
        now_mean, then_mean = _mean_input(row).quantize(Decimal(1)), _mean_input(before).quantize(Decimal(1))
        message = (
            f"Calls of workflow {workflow} send {now_mean:,} input tokens on average today, {times(ratio)} the "
            f"{then_mean:,} of the {settings.baseline_days} days before (context growth)"
        )
        detail = {"mean_input_tokens": str(now_mean), "baseline_mean_input_tokens": str(then_mean)}
        out.append(
            _alert("context_growth", hit, subject, ratio, message, day_id(now), _end_of(now, DAY), owner, now, detail)
        )
    return out


def signals(ledger: Ledger, settings: Iterable[tuple[str, object]], now: datetime, owner: Owner) -> list[AlertRaised]:
    """Every enabled ledger signal of `settings` (name, its settings), in table order."""
    checks = {
        "hourly_spend": hourly_spend,
        "cache_miss": cache_miss,
        "session_cost": session_cost,
        "context_growth": context_growth,
    }
    out: list[AlertRaised] = []
    for name, config in settings:
        check = checks.get(name)
        if check is not None:
            out.extend(check(ledger, config, now, owner))  # type: ignore[operator]
    return out
