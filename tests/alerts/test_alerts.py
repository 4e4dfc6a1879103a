"""The alert table on a real SQLite ledger and budget store: each signal at warning and critical, the policy's
settings, and each alert announced once per window across two workers sharing the store."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fiscus.alerts import AlertWatch, evaluate_alerts
from fiscus.attribution import Attribution
from fiscus.events.alert_events import AlertRaised, Level
from fiscus.events.cost_event import CostEvent
from fiscus.governor import CallRequest, Governor
from fiscus.ledger import Ledger, open_ledger
from fiscus.notify import payload, summary
from fiscus.notify.channels import ChannelConfig
from fiscus.policy.load import parse_policy
from fiscus.pricing.catalogue import PriceCatalogue
from fiscus.pricing.cost import Cost
from fiscus.stores import open_store
from fiscus.usage.model import Usage

NOW = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)
_ids = itertools.count()


def call(at: datetime, cost: str, *, input_tokens: int = 1000, cache_read: int = 0, **dims: str) -> CostEvent:
    return CostEvent(
        id=f"e{next(_ids):07d}",
        timestamp=at,
        provider="anthropic",
        requested_model="claude-sonnet-4-6",
        served_model="claude-sonnet-4-6",
        usage=Usage(input_tokens=input_tokens, cache_read_tokens=cache_read, output_tokens=10),
        cost=Cost(input=Decimal(cost)),
        attribution=Attribution(**dims),
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with open_ledger(f"sqlite:///{tmp_path}/ledger.db") as led:
        yield led


def alerts(ledger: Ledger, policy: dict[str, Any] | None = None, statuses: list[Any] | None = None):
    return evaluate_alerts(ledger, statuses or [], parse_policy(policy or {}), NOW)


def found(items: list[AlertRaised], signal: str) -> list[tuple[Level, tuple[tuple[str, str], ...]]]:
    return [(a.level, a.subject) for a in items if a.signal == signal]


def baseline_hours(ledger: Ledger, hours: int = 24, cost: str = "1", **dims: str) -> None:
    start = NOW - timedelta(hours=1)
    ledger.append([call(start - timedelta(hours=h, minutes=30), cost, **dims) for h in range(hours)])


@pytest.mark.parametrize(("spend", "level"), [("1.9", None), ("2", Level.WARNING), ("5", Level.CRITICAL)])
def test_hourly_spend_against_the_median_hour(ledger: Ledger, spend: str, level: Level | None) -> None:
    baseline_hours(ledger, workflow="research")
    ledger.append([call(NOW - timedelta(minutes=10), spend, workflow="research")])
    got = found(alerts(ledger), "hourly_spend")
    expected = [] if level is None else [(level, ()), (level, (("workflow", "research"),))]
    assert got == expected


def test_hourly_spend_needs_history(ledger: Ledger) -> None:
    baseline_hours(ledger, hours=3)
    ledger.append([call(NOW - timedelta(minutes=10), "100")])
    assert found(alerts(ledger), "hourly_spend") == []


@pytest.mark.parametrize(("miss", "level"), [(40, None), (41, Level.WARNING), (61, Level.CRITICAL)])
def test_cache_miss_where_caching_is_expected(ledger: Ledger, miss: int, level: Level | None) -> None:
    ledger.append([call(NOW - timedelta(days=2), "0.1", input_tokens=10, cache_read=90, workflow="compliance")])
    ledger.append([call(NOW - timedelta(days=2), "0.1", input_tokens=100, workflow="no-cache")])
    recent = NOW - timedelta(minutes=5)
    ledger.append(
        [call(recent, "0.1", input_tokens=miss, cache_read=100 - miss, workflow="compliance") for _ in range(5)]
    )
    ledger.append([call(recent, "0.1", input_tokens=100, workflow="no-cache") for _ in range(6)])
    got = found(alerts(ledger), "cache_miss")
    assert got == ([] if level is None else [(level, (("workflow", "compliance"),))])


def test_cache_miss_for_a_workflow_listed_as_expected(ledger: Ledger) -> None:
    ledger.append([call(NOW - timedelta(minutes=5), "0.1", input_tokens=100, workflow="new") for _ in range(5)])
    assert found(alerts(ledger), "cache_miss") == []
    policy = {"alerts": {"cache_miss": {"expected": ["new"]}}}
    assert found(alerts(ledger, policy), "cache_miss") == [(Level.CRITICAL, (("workflow", "new"),))]


@pytest.mark.parametrize(("cost", "level"), [("4.99", None), ("5", Level.WARNING), ("10", Level.CRITICAL)])
def test_session_cost_against_its_task_class_median(ledger: Ledger, cost: str, level: Level | None) -> None:
    ledger.append(
        [call(NOW - timedelta(days=1, minutes=n), "1", task_class="triage", session=f"s{n}") for n in range(6)]
    )
    ledger.append([call(NOW - timedelta(minutes=3), cost, task_class="triage", session="runaway")])
    got = found(alerts(ledger), "session_cost")
    assert got == ([] if level is None else [(level, (("task_class", "triage"), ("session", "runaway")))])


@pytest.mark.parametrize(("tokens", "level"), [(1400, None), (1500, Level.WARNING), (2000, Level.CRITICAL)])
def test_context_growth_per_workflow(ledger: Ledger, tokens: int, level: Level | None) -> None:
    ledger.append(
        [call(NOW - timedelta(days=3, minutes=n), "0.01", input_tokens=1000, workflow="w") for n in range(10)]
    )
    ledger.append(
        [call(NOW - timedelta(hours=2, minutes=n), "0.01", input_tokens=tokens, workflow="w") for n in range(10)]
    )
    got = found(alerts(ledger), "context_growth")
    assert got == ([] if level is None else [(level, (("workflow", "w"),))])


def _governor(store: str, policy: dict[str, Any], events: list[object], clock: Any = None) -> Governor:
    return Governor(
        policy=parse_policy(policy),
        store=open_store(store),
        catalogue=PriceCatalogue(),
        on_event=events.append,
        clock=clock or NOW.timestamp,
    )


def _spend(governor: Governor, input_tokens: int, **dims: str) -> None:
    request = CallRequest(
        provider="openai", model="gpt-4o", attribution=Attribution(**dims), input_tokens=input_tokens, max_tokens=1
    )
    admission = governor.admit(request)
    governor.settle(admission, Usage(input_tokens=input_tokens, output_tokens=0))


BUDGETS = {
    "owners": {"default": "finops@example.com", "team": {"growth": "growth-lead@example.com"}},
    "budgets": [
        {"name": "growth-day", "scope": {"team": "growth"}, "window": "day", "limit": {"usd": "0.01"}},
        {"name": "month-tokens", "window": "month", "limit": {"tokens": 4000}},
    ],
}


def test_daily_burn_and_quota_utilisation_from_budget_status(ledger: Ledger, tmp_path: Path) -> None:
    governor = _governor("memory://", BUDGETS, [])
    _spend(governor, 2800, team="growth")  # $0.007 of $0.01 today; 2,801 of 4,000 tokens this month
    got = alerts(ledger, BUDGETS, list(governor.status()))
    assert found(got, "daily_budget_burn") == [(Level.WARNING, (("budget", "growth-day"),))]
    assert found(got, "quota_utilisation") == []
    assert [a.owner for a in got if a.signal == "daily_budget_burn"] == ["growth-lead@example.com"]
    _spend(governor, 900, team="growth")  # $0.00925 today (92.5 %); 3,702 tokens this month (92.6 %)
    got = alerts(ledger, BUDGETS, list(governor.status()))
    assert found(got, "daily_budget_burn") == [(Level.CRITICAL, (("budget", "growth-day"),))]
    assert found(got, "quota_utilisation") == [(Level.WARNING, (("budget", "month-tokens"),))]
    assert got[0].level is Level.CRITICAL and "The daily budget growth-day is 93 % used" in got[0].message


def test_policy_turns_signals_off_and_moves_levels(ledger: Ledger) -> None:
    baseline_hours(ledger)
    ledger.append([call(NOW - timedelta(minutes=10), "3")])
    assert found(alerts(ledger), "hourly_spend") == [(Level.WARNING, ())]
    assert (
        found(alerts(ledger, {"alerts": {"hourly_spend": {"warning": 4, "critical": 8, "per": []}}}), "hourly_spend")
        == []
    )
    assert alerts(ledger, {"alerts": {"hourly_spend": {"enabled": False}}}) == []
    assert alerts(ledger, {"alerts": {"enabled": False}}) == []


def test_announced_once_per_window_across_workers(ledger: Ledger, tmp_path: Path) -> None:
    baseline_hours(ledger)
    ledger.append([call(NOW - timedelta(minutes=10), "6")])
    policy = {"alerts": {"hourly_spend": {"per": []}, "critical_channel": "oncall"}}
    clock = [NOW.timestamp()]
    store = f"sqlite:///{tmp_path}/budgets.db"
    heard: list[object] = []
    workers = [_governor(store, policy, heard, clock=lambda: clock[0]) for _ in range(2)]
    watches = [AlertWatch(g, ledger_url=ledger.url, open_ledger=open_ledger) for g in workers]
    sent = [a for w in watches for a in w.check()]
    assert [(a.signal, a.level, a.channel) for a in sent] == [("hourly_spend", Level.CRITICAL, "oncall")]
    assert heard == sent
    assert [a for w in watches for a in w.check()] == []  # the same hour: nothing new
    assert watches[1].counts() == {("hourly_spend", "critical"): 1}
    later = NOW + timedelta(hours=1)
    clock[0] = later.timestamp()
    ledger.append([call(later - timedelta(minutes=5), "6")])
    again = [a for w in watches for a in w.check(later)]
    assert [a.window for a in again] == [later.strftime("%Y-%m-%dT%H")]
    for governor in workers:
        governor.close()


def test_alert_payloads_read_plainly(monkeypatch: pytest.MonkeyPatch) -> None:
    alert = AlertRaised(
        signal="cache_miss",
        level=Level.CRITICAL,
        subject=(("workflow", "compliance"),),
        value=Decimal("0.7"),
        limit=Decimal("0.6"),
        message="70 % of the input of workflow compliance was not read from the prompt cache (critical)",
        window="2026-03-10T15",
        expires_at=0.0,
        owner="alice@example.com",
    )
    text = summary(alert.to_dict())
    assert text.startswith("fiscus critical: 70 % of the input") and "Owner: alice@example.com." in text
    assert payload(ChannelConfig(kind="slack", url="http://127.0.0.1:9/x"), alert) == {"text": text}
    monkeypatch.setenv("PD_KEY_FOR_TEST", "routing-key")
    pager = payload(ChannelConfig(kind="pagerduty", routing_key_env="PD_KEY_FOR_TEST"), alert)
    assert pager["payload"]["severity"] == "critical" and pager["payload"]["summary"] == text
