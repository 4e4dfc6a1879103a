"""The gateway on a memory store restarted: a restart is a loss, so the new gateway rebuilds the day's counter
from the ledger before its first call, announces it and counts it on /metrics."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from fiscus.events.cost_event import CallStatus
from fiscus.ledger import open_ledger
from fiscus.money import to_nanos

from .conftest import real_gateway

POLICY = """
version: 1
budgets:
  - {name: growth-day, scope: {team: growth}, window: day, limit: {usd: 100}}
"""


def call(url: str, key: str) -> httpx.Response:
    body = {"model": "gpt-4o-mini", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}, timeout=10)


def test_a_restarted_memory_store_is_rebuilt_announced_and_counted(
    tmp_path: Path, emulator_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FISCUS_METRICS_TOKEN", "metrics-secret")
    with real_gateway(tmp_path, emulator_url, POLICY, "memory://") as first:
        assert [call(first.url, first.key).status_code for _ in range(3)] == [200] * 3
    with open_ledger(first.ledger_url) as ledger:
        spent = sum(to_nanos(e.cost.total) for e in ledger.events() if e.status is CallStatus.OK)
    assert spent > 0
    with real_gateway(tmp_path, emulator_url, POLICY, "memory://") as again:  # the restart: an empty memory store
        (status,) = again.governor.status()
        assert status.spent.nanos == spent and status.spent.requests == 3  # rebuilt before the first call
        metrics = httpx.get(f"{again.url}/metrics", headers={"authorization": "Bearer metrics-secret"}).text
        assert 'fiscus_budget_store_events_total{event="lost",policy="rebuild"} 1.0' in metrics
