"""The alert table in a running gateway: its own periodic check announces to the governor's listeners, the
admin API lists what stands, `/metrics` counts it."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from fiscus.config import GatewayConfig
from fiscus.events.alert_events import AlertRaised

from .conftest import real_gateway

POLICY = """
owners: {default: finops@example.com}
alerts: {daily_budget_burn: {warning: 0.01, critical: 0.9}}
budgets:
  - {name: support-day, scope: {team: growth}, window: day, limit: {usd: "0.0001"}}
"""


def test_gateway_checks_announces_lists_and_counts(
    tmp_path: Path, emulator_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FISCUS_ADMIN_TOKEN", "admin-secret")
    gateway = GatewayConfig(alert_check_s=0.1, pace_check_s=0)
    store = f"sqlite:///{tmp_path}/budgets.db"
    with real_gateway(tmp_path, emulator_url, POLICY, store, config_update={"gateway": gateway}) as real:
        heard: list[object] = []
        real.governor.add_listener(heard.append)
        real.openai().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello there"}], max_tokens=8
        )
        deadline = time.monotonic() + 10
        while not any(isinstance(e, AlertRaised) for e in heard) and time.monotonic() < deadline:
            time.sleep(0.05)
        raised = [e for e in heard if isinstance(e, AlertRaised)]
        assert [(a.signal, a.subject, a.owner) for a in raised] == [
            ("daily_budget_burn", (("budget", "support-day"),), "finops@example.com")
        ]
        time.sleep(0.3)  # more checks in the same window: nothing new
        assert len([e for e in heard if isinstance(e, AlertRaised)]) == 1
        with httpx.Client(base_url=real.url, headers={"authorization": "Bearer admin-secret"}) as client:
            standing = client.get("/admin/alerts").json()
            metrics = client.get("/metrics").text
            assert client.get("/admin/alerts", headers={"authorization": "Bearer nope"}).status_code == 401
    assert [(a["signal"], a["level"], a["owner"]) for a in standing] == [
        ("daily_budget_burn", "warning", "finops@example.com")
    ]
    assert "The daily budget support-day is" in standing[0]["message"]
    assert 'fiscus_alerts_standing{level="warning",signal="daily_budget_burn"} 1.0' in metrics
    assert 'fiscus_alerts_standing{level="warning",signal="cache_miss"} 0.0' in metrics
