"""Near a limit the gateway has Anthropic count the input (`POST /v1/messages/count_tokens`, with the caller's
headers) when the byte bound alone would stop the call, through the real gateway and the official anthropic
client, on SQLite and Redis: the call runs on the model asked for and the budget holds; a count that fails leaves
the byte bound standing (the call is downgraded as before); far from the limit nothing is counted. A sequential
agent whose context grows reaches the budget's end on its own model."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from fiscus.events.cost_event import CallStatus

from .conftest import real_gateway

MODEL = "claude-sonnet-4-6"
PROMPT = "the budget holds " * 2_500  # 42,500 ASCII bytes: ~10.6k tokens counted, a 42.5k-token byte bound
POLICY = """
version: 1
budgets:
  - name: agent-day
    scope: {agent: support-bot}
    window: day
    limit: {usd: %s}
    thresholds: [{at: 1.0, action: partial}]
"""


def counts(emulator_url: str) -> int:
    stats = httpx.get(f"{emulator_url}/_emulator/stats").json()
    return int(stats["by_endpoint"].get("anthropic.count_tokens", 0))


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/budget.db"
    return f"{request.getfixturevalue('redis_url')}?prefix={request.getfixturevalue('redis_prefix')}"


def test_counted_near_the_limit_runs_on_the_model_asked(tmp_path: Path, emulator_url: str, store: str) -> None:
    with real_gateway(tmp_path, emulator_url, POLICY % "0.05", store) as real:
        client = real.anthropic()
        failing = {"x-emulator-error-sequence": "500,200", "x-emulator-sequence-key": f"count-{tmp_path.name}"}
        # the count fails: the byte bound stands and one tier down fits, as without counting
        other = client.messages.create(
            model=MODEL, max_tokens=200, messages=[{"role": "user", "content": PROMPT[:-3]}], extra_headers=failing
        )
        assert other.model != MODEL
        before = counts(emulator_url)
        reply = client.messages.create(model=MODEL, max_tokens=200, messages=[{"role": "user", "content": PROMPT}])
        assert reply.model == MODEL and counts(emulator_url) == before + 1
        events = real.events()
    assert [e.served_model for e in events] == [other.model, MODEL]
    assert events[0].decision == "downgrade" and events[1].decision in (None, "allow")
    assert all(e.status is CallStatus.OK for e in events)
    assert sum((e.total_usd for e in events), Decimal(0)) <= Decimal("0.05")


def test_far_from_the_limit_nothing_is_counted(tmp_path: Path, emulator_url: str) -> None:
    with real_gateway(tmp_path, emulator_url, POLICY % "10", f"sqlite:///{tmp_path}/budget.db") as real:
        before = counts(emulator_url)
        reply = real.anthropic().messages.create(
            model=MODEL, max_tokens=200, messages=[{"role": "user", "content": PROMPT}]
        )
        assert reply.model == MODEL and counts(emulator_url) == before


def test_a_sequential_agent_reaches_the_end_on_its_own_model(tmp_path: Path, emulator_url: str, store: str) -> None:
    """Context growing ~2.5k tokens a step on a $0.20 day: every step runs on the model asked for until one that
    truly does not fit; the budget is never passed."""
    limit = Decimal("0.20")
    with real_gateway(tmp_path, emulator_url, POLICY % limit, store) as real:
        client = real.anthropic()
        history: list[dict[str, str]] = []
        served: list[str] = []
        for step in range(40):
            history.append({"role": "user", "content": f"step {step}: " + "new evidence arrives " * 500})
            raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=100, messages=history)
            reply = raw.parse()
            if raw.headers.get("x-fiscus-partial") or reply.model != MODEL:
                break
            served.append(reply.model)
            history.append({"role": "assistant", "content": reply.content[0].text})
        events = real.events()
    ran = [e for e in events if e.status is CallStatus.OK]
    spent = sum((e.total_usd for e in ran), Decimal(0))
    assert spent <= limit
    on_model = sum((e.total_usd for e in ran if e.served_model == MODEL), Decimal(0))
    last = ran[len(served) - 1].total_usd  # the steps grow: the next would have cost more than this one
    assert on_model >= limit - last * Decimal("1.2"), (on_model, last)
    assert len(served) >= 5
