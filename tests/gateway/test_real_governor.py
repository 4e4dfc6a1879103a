"""The gateway on the real governor: a policy file, a SQLite (or Redis) budget store and a SQLite ledger, the
emulator upstream and the official SDKs as clients. A day budget is driven through its default thresholds
(warn → downgrade + compress → partial), a block policy answers 429 until the window resets, and at the end
the ledger's events add up exactly to the budget counters with nothing left reserved."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest

from fiscus.events.cost_event import CostEvent
from fiscus.money import to_nanos
from tests.gateway.conftest import Real, real_gateway, serve_real

MESSAGES = [{"role": "user", "content": "Summarise the quarter."}]
# One budget per team and day, counted in requests so every step is exact; the default thresholds apply:
# warn at 80 %, downgrade + compress to half the context at 90 %, partial at 100 %.
LADDER_POLICY = """
version: 1
budgets:
  - name: growth-daily
    scope: {team: growth}
    window: day
    limit: {requests: 10, usd: 100}
"""
BLOCK_POLICY = """
version: 1
budgets:
  - name: growth-hard
    scope: {team: growth}
    window: day
    limit: {requests: 2}
    thresholds:
      - {at: 1.0, action: block}
"""
BIG_TOOL_CONTEXT = [
    {"role": "system", "content": "You are the finance assistant."},
    {"role": "user", "content": "Pull the ledger."},
    {
        "role": "assistant",
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "ledger", "arguments": "{}"}}],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "row, " * 3000},
    {"role": "user", "content": "Now summarise it."},
]


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/budget.db"
    redis_url = request.getfixturevalue("redis_url")
    return f"{redis_url}?prefix={request.getfixturevalue('redis_prefix')}"


@pytest.fixture
def ladder(tmp_path: Path, emulator_url: str, store_url: str) -> Iterator[Real]:
    yield from serve_real(tmp_path, emulator_url, LADDER_POLICY, store_url)


@pytest.fixture
def blocking(tmp_path: Path, emulator_url: str) -> Iterator[Real]:
    yield from serve_real(tmp_path, emulator_url, BLOCK_POLICY, f"sqlite:///{tmp_path}/budget.db")


def _assert_ledger_matches_counters(real: Real, events: list[CostEvent]) -> None:
    (status,) = real.governor.status()
    assert status.reserved.nanos == status.reserved.tokens == status.reserved.requests == 0
    called = [e for e in events if e.status in ("ok", "error")]
    assert status.spent.nanos == sum(to_nanos(e.cost.total) for e in events)
    assert status.spent.tokens == sum(e.usage.total_tokens for e in events)
    assert status.spent.requests == len(called)


def test_budget_walks_warn_downgrade_partial(ladder: Real) -> None:
    client = ladder.openai()
    seen: list[tuple[str | None, str]] = []
    # 1–6: allowed; chat, a stream, Responses and Anthropic all count against the same budget.
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
        seen.append((raw.headers.get("x-fiscus-budget"), raw.parse().model))
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert client.responses.create(model="gpt-4o", input="hello").output_text
    with ladder.anthropic().messages.stream(model="claude-haiku-4-5", max_tokens=50, messages=MESSAGES) as stream:
        assert stream.get_final_message().usage.output_tokens > 0
    # 7: an upstream failure is recorded (unbilled) and still uses a request of the budget.
    with pytest.raises(openai.InternalServerError):
        ladder.openai(default_headers={"x-emulator-error": "500"}).chat.completions.create(
            model="gpt-4o", messages=MESSAGES
        )
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)  # 8
    assert "x-fiscus-budget" not in raw.headers
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)  # 9: 80 %
    assert raw.headers["x-fiscus-budget"] == "warn" and raw.parse().model == "gpt-4o"
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=BIG_TOOL_CONTEXT)  # 10: 90 %
    assert raw.headers["x-fiscus-budget"] in ("downgrade", "compress")
    assert raw.headers["x-fiscus-requested-model"] == "gpt-4o"
    assert raw.headers["x-fiscus-served-model"] == "gpt-4o-mini" == raw.parse().model
    assert int(raw.headers["x-fiscus-compressed-tokens"]) > 1000
    assert raw.parse().usage.prompt_tokens < 2000  # the emulator counted what was actually sent
    # 100 %: partial answers in each protocol, no model called.
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
    assert raw.status_code == 200 and raw.headers["x-fiscus-budget"] == "exhausted"
    assert raw.headers["x-fiscus-cost-usd"] == "0" and "budget" in raw.parse().choices[0].message.content
    streamed = list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    assert streamed[-1].choices[0].finish_reason == "stop" and streamed[-1].model_extra["fiscus"]["partial"]
    message = ladder.anthropic().messages.create(model="claude-haiku-4-5", max_tokens=50, messages=MESSAGES)
    assert message.stop_reason == "end_turn" and "exhausted" in message.content[0].text
    assert seen == [(None, "gpt-4o")] * 3

    events = ladder.events()
    statuses = [e.status for e in events]
    assert statuses.count("ok") == 9 and statuses.count("error") == 1 and statuses.count("partial") == 3
    assert len(events) == 13 and len({e.id for e in events}) == 13
    downgraded = [e for e in events if e.served_model != e.requested_model]
    assert [(e.requested_model, e.served_model) for e in downgraded] == [("gpt-4o", "gpt-4o-mini")]
    assert all(e.cost.total == 0 for e in events if e.status != "ok")
    assert all(e.cost.total > 0 for e in events if e.status == "ok")
    _assert_ledger_matches_counters(ladder, events)


def test_block_policy_is_429_until_the_window_resets(blocking: Real) -> None:
    client = blocking.openai()
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    (status,) = blocking.governor.status()
    assert status.resets_at is not None
    until_reset = (status.resets_at - datetime.now(UTC)).total_seconds()
    headers = caught.value.response.headers
    assert abs(int(headers["retry-after"]) - math.ceil(until_reset)) <= 2
    assert headers["x-fiscus-budget"] == "exhausted" and caught.value.body["code"] == "budget_exhausted"
    assert headers["x-should-retry"] == "false" or until_reset <= 60
    with httpx.Client() as http:
        answer = http.post(
            blocking.url + "/v1/messages",
            headers={"x-api-key": blocking.key},
            json={"model": "claude-haiku-4-5", "max_tokens": 5, "messages": MESSAGES},
        )
    assert answer.status_code == 429 and answer.json()["error"]["type"] == "rate_limit_error"
    assert (
        answer.headers["retry-after"] == headers["retry-after"]
        or abs(int(answer.headers["retry-after"]) - int(headers["retry-after"])) <= 1
    )
    events = blocking.events()
    assert [e.status for e in events] == ["ok", "ok", "blocked", "blocked"]
    assert all(e.tags.get("budget") == "growth-hard" for e in events[2:])
    assert sum(e.cost.total for e in events) > Decimal(0)
    _assert_ledger_matches_counters(blocking, events)


ROUTED_POLICY = """
version: 1
routes:
  triage: [claude-haiku-4-5, gpt-4o-mini]
budgets:
  - {name: growth-day, scope: {team: growth}, window: day, limit: {usd: 100}}
"""


def test_task_class_routes_pick_the_model_within_its_family(tmp_path: Path, emulator_url: str) -> None:
    with real_gateway(tmp_path, emulator_url, ROUTED_POLICY, f"sqlite:///{tmp_path}/budget.db") as real:
        triage = {"x-fiscus-task-class": "triage"}
        raw = real.openai(default_headers=triage).chat.completions.with_raw_response.create(
            model="gpt-4o", messages=MESSAGES
        )
        assert raw.headers["x-fiscus-requested-model"] == "gpt-4o"
        assert raw.headers["x-fiscus-served-model"] == "gpt-4o-mini" == raw.parse().model
        anthropic_client = real.anthropic().with_options(default_headers=triage)
        with anthropic_client.messages.stream(model="claude-sonnet-4-6", max_tokens=50, messages=MESSAGES) as stream:
            assert stream.get_final_message().model == "claude-haiku-4-5"
        plain = real.openai().chat.completions.create(model="gpt-4o", messages=MESSAGES)  # no task class
        assert plain.model == "gpt-4o"
        events = real.events()
        assert sorted((e.requested_model, e.served_model) for e in events) == [
            ("claude-sonnet-4-6", "claude-haiku-4-5"),
            ("gpt-4o", "gpt-4o"),
            ("gpt-4o", "gpt-4o-mini"),
        ]
        _assert_ledger_matches_counters(real, events)


WINDOWED_POLICY = """
version: 1
context:
  triage: 1000
budgets:
  - {name: growth-day, scope: {team: growth}, window: day, limit: {usd: 100}}
"""


def test_a_task_class_context_window_trims_what_is_sent(tmp_path: Path, emulator_url: str) -> None:
    with real_gateway(tmp_path, emulator_url, WINDOWED_POLICY, f"sqlite:///{tmp_path}/budget.db") as real:
        triage = real.openai(default_headers={"x-fiscus-task-class": "triage"})
        raw = triage.chat.completions.with_raw_response.create(model="gpt-4o", messages=BIG_TOOL_CONTEXT)
        assert int(raw.headers["x-fiscus-compressed-tokens"]) > 1000 and "x-fiscus-budget" not in raw.headers
        assert raw.parse().usage.prompt_tokens < 1500  # the emulator counted what was actually sent
        other = real.openai().chat.completions.with_raw_response.create(model="gpt-4o", messages=BIG_TOOL_CONTEXT)
        assert "x-fiscus-compressed-tokens" not in other.headers and other.parse().usage.prompt_tokens > 3000


def test_a_single_oversize_message_is_trimmed_and_reported(tmp_path: Path, emulator_url: str) -> None:
    long = "Opening. " + "pasted contract text " * 2000 + "What is the notice period?"
    with real_gateway(tmp_path, emulator_url, WINDOWED_POLICY, f"sqlite:///{tmp_path}/budget.db") as real:
        triage = real.anthropic(default_headers={"x-fiscus-task-class": "triage"})
        raw = triage.messages.with_raw_response.create(
            model="claude-haiku-4-5", max_tokens=32, messages=[{"role": "user", "content": long}]
        )
        cut = int(raw.headers["x-fiscus-compressed-tokens"])
        assert cut > 8000 and raw.headers["x-fiscus-compressed"] == "1 message trimmed"
        usage = raw.parse().usage
        assert usage.input_tokens < 1100  # what the emulator was actually sent
