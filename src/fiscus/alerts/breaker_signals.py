"""The alert table's entries read from the breakers: a spend-rate breaker's account-wide level (warning at 2 ×,
critical at 5 × the median hourly spend) while it stands, global and per agent.

Read from the shared breaker state (`guards.state`), so every worker and `fiscus alerts check` see the same
entries: the figures from the shared windows (this hour's spend against the median of the past hours), since when
from the note the first process to see the level wrote (`fiscus.guards.sharing`). An entry clears when the figures
no longer reach its level: a new hour, a reset. The breakers announce the level themselves (`SpendRateLevel`,
once per scope, hour and level across the fleet), so `AlertWatch` shows these entries without announcing them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fiscus.alerts.levels import money, times
from fiscus.errors import FiscusError
from fiscus.events.alert_events import AlertRaised, Level
from fiscus.guards.registry import GLOBAL, NOTE_PREFIX, BreakerRegistry
from fiscus.guards.sharing import LEVEL_NOTE, LEVELS, level_of
from fiscus.policy.types import Policy

SIGNAL = "breaker_spend_rate"
_LIMITS = dict(LEVELS)
_AGENT = "agent:"


def breaker_signals(registry: BreakerRegistry, policy: Policy, now: datetime) -> list[AlertRaised]:
    """The spend-rate levels standing now, one entry per breaker scope (global, agent:<name>). Raises
    `FiscusError` when the shared state cannot be read."""
    account = registry.account
    if account is None or registry.state is None:
        return []
    registry.sync()  # the breakers' own states, for the entries to say which are open
    records = registry.state.load_all()
    since: dict[tuple[str, str], tuple[float, int]] = {}  # (level, scope) → (since, hour)
    scopes = {GLOBAL}
    for record in records:
        if record.scope.startswith(LEVEL_NOTE):
            level, _, scope = record.scope.removeprefix(LEVEL_NOTE).partition(":")
            since[(level, scope)] = (record.since, int(record.details.get("hour", -1)))
            scopes.add(scope)
        elif not record.scope.startswith(NOTE_PREFIX):
            scopes.add(record.scope)
    scopes = {s for s in scopes if s == GLOBAL or s.startswith(_AGENT)}
    account.exchange(sorted(scopes))  # fresh figures: this process's own share is sent with it
    moment = now.timestamp()
    hour = int(moment // 3600)
    out: list[AlertRaised] = []
    for scope in sorted(scopes, key=lambda s: (s != GLOBAL, s)):
        breaker = registry.breaker(scope)
        if breaker.config.spend_rate_k is None:
            continue
        figures = account.figures(scope, breaker.config, moment)
        ratio = figures.ratio()
        level = level_of(ratio)
        if level is None or ratio is None or figures.baseline is None:
            continue
        noted = since.get((level, scope))
        started = noted[0] if noted is not None and noted[1] == hour else None
        out.append(_entry(scope, level, ratio, figures.hour_spend, figures.baseline, started, breaker, policy, now))
    return out


def _entry(
    scope: str,
    level: str,
    ratio: Decimal,
    spend: Decimal,
    baseline: Decimal,
    started: float | None,
    breaker: Any,
    policy: Policy,
    now: datetime,
) -> AlertRaised:
    agent = scope.removeprefix(_AGENT) if scope.startswith(_AGENT) else None
    subject: tuple[tuple[str, str], ...] = (("breaker", scope),)
    if agent is not None:
        subject += (("agent", agent),)
    when = datetime.fromtimestamp(started, UTC) if started is not None else None
    state = str(breaker.state)
    told = f", since {when:%H:%M:%S} UTC" if when is not None else ""
    message = (
        f"The {scope} breaker's account-wide spend this hour is {money(spend)}, {times(ratio)} the median hour "
        f"({money(baseline)}){told}; the breaker is {state.replace('_', '-')}"
    )
    hour_start = now.replace(minute=0, second=0, microsecond=0)
    return AlertRaised(
        signal=SIGNAL,
        level=Level(level),
        subject=subject,
        value=ratio,
        limit=_LIMITS[level],
        message=f"{message} ({level})",
        window=hour_start.strftime("%Y-%m-%dT%H"),
        expires_at=(hour_start + timedelta(hours=1, days=1)).timestamp(),
        owner=policy.owner_of({"agent": agent} if agent is not None else {}),
        detail={
            "breaker": scope,
            "state": state,
            "spend_usd": format(spend, "f"),
            "baseline_usd": format(baseline, "f"),
            "since": when.isoformat() if when is not None else "",
        },
        timestamp=now,
    )


def standing_breaker_levels(registry: BreakerRegistry | None, policy: Policy, now: datetime) -> list[AlertRaised]:
    """`breaker_signals`, or nothing when there are no breakers or the alert table is off; a shared state that
    cannot be read leaves the breakers' entries out rather than the whole table."""
    if registry is None or not policy.alerts.enabled:
        return []
    try:
        return breaker_signals(registry, policy, now)
    except FiscusError:
        return []
