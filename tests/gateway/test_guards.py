"""Guards at the gateway, through the official SDKs on the real governor: breakers that open on budget
exhaustion, error rate and spend rate and then refuse at once (partial, or 429 in the client's format), loops
in a session (repeated tool calls, ping-pong between two agents) answered with a partial naming the loop.
Every refusal is still one ledger event."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from fiscus.events.guard_events import BreakerTripped, LoopDetected
from fiscus.guards import BreakerConfig, BreakerRegistry
from tests.gateway.conftest import Real, serve_real

MESSAGES = [{"role": "user", "content": "Find the overdue invoices."}]
ROOMY = """
version: 1
budgets:
  - name: growth-daily
    scope: {team: growth}
    window: day
    limit: {usd: 100}
"""
ONE_CALL = """
version: 1
budgets:
  - name: growth-one
    scope: {team: growth}
    window: day
    limit: {requests: 1}
    thresholds:
      - {at: 1.0, action: block}
"""
LOOKUP_TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look invoices up",
        "parameters": {"type": "object", "properties": {"status": {"type": "string"}}, "required": ["status"]},
    },
}


@pytest.fixture
def events() -> list[object]:
    return []


@pytest.fixture
def serve(tmp_path: Path, emulator_url: str, events: list[object]) -> Iterator[Callable[..., Real]]:
    """`serve(policy, **create_app options)`: a gateway on the real governor, guard events into `events`."""
    running: list[Iterator[Real]] = []

    def start(policy: str, **options: object) -> Real:
        store = f"sqlite:///{tmp_path}/budget.db"
        gen = serve_real(tmp_path, emulator_url, policy, store, on_event=events.append, **options)
        running.append(gen)
        return next(gen)

    yield start
    for gen in running:
        next(gen, None)


@pytest.fixture(autouse=True)
def _metrics_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FISCUS_METRICS_TOKEN", "metrics-secret")


def _metrics(real: Real) -> str:
    return httpx.get(real.url + "/metrics", headers={"authorization": "Bearer metrics-secret"}).text


def test_exhausted_budget_opens_the_agent_breaker(serve: Callable[..., Real], events: list[object]) -> None:
    real = serve(ONE_CALL)
    client = real.openai()
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError) as by_budget:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert "x-fiscus-guard" not in by_budget.value.response.headers
    (trip,) = [e for e in events if isinstance(e, BreakerTripped)]
    assert (trip.scope, trip.reason) == ("agent:support-bot", "budget_exhausted")
    with pytest.raises(anthropic.RateLimitError) as by_breaker:
        real.anthropic().messages.create(model="claude-haiku-4-5", max_tokens=20, messages=MESSAGES)
    headers = by_breaker.value.response.headers
    assert headers["x-fiscus-guard"] == "breaker_open"
    # The budget's reset, not the breaker's shorter cooldown, is when a retry can succeed.
    assert int(headers["retry-after"]) == pytest.approx(int(by_budget.value.response.headers["retry-after"]), abs=2)
    assert 'fiscus_breaker_open{breaker="agent:support-bot"} 1.0' in _metrics(real)
    recorded = real.events()
    assert [e.status for e in recorded] == ["ok", "blocked", "blocked"]
    assert recorded[-1].tags["budget"] == "growth-one" and recorded[-1].provider == "anthropic"
    (status,) = real.governor.status()
    assert status.spent.requests == 1 and status.reserved.requests == 0


def test_error_rate_opens_agent_and_global_breakers(
    serve: Callable[..., Real], events: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = BreakerConfig(error_rate=0.5, error_window=4, min_calls=4, spend_rate_k=None)
    real = serve(ROOMY, breakers=config, on_breaker_open="block")
    failing = real.openai(default_headers={"x-emulator-error": "500"})
    for _ in range(4):
        with pytest.raises(openai.InternalServerError):
            failing.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    trips = {(e.scope, e.reason) for e in events if isinstance(e, BreakerTripped)}
    assert trips == {("global", "error_rate"), ("agent:support-bot", "error_rate")}
    with pytest.raises(anthropic.RateLimitError) as caught:
        real.anthropic().messages.create(model="claude-haiku-4-5", max_tokens=20, messages=MESSAGES)
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert "error_rate" not in caught.value.message and "failed" in caught.value.message
    assert 0 < int(caught.value.response.headers["retry-after"]) <= 300
    other, _ = real.keyring.create(agent="billing-bot", team="growth", environment="test")
    with pytest.raises(openai.RateLimitError) as global_open:  # the global breaker refuses every agent
        openai.OpenAI(base_url=real.url + "/v1", api_key=other, max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES
        )
    assert global_open.value.body["code"] == "breaker_open"
    text = _metrics(real)
    assert 'fiscus_breaker_open{breaker="global"} 1.0' in text
    monkeypatch.setenv("FISCUS_ADMIN_TOKEN", "admin-secret")
    states = httpx.get(real.url + "/admin/breakers", headers={"authorization": "Bearer admin-secret"}).json()
    assert {(b["scope"], b["state"], b["reason"]) for b in states} >= {("global", "open", "error_rate")}
    assert [e.status for e in real.events()] == ["error"] * 4 + ["blocked"] * 2


def test_spend_rate_above_k_times_the_median_hour(serve: Callable[..., Real], events: list[object]) -> None:
    now = [1_900_000_000.0]
    config = BreakerConfig(spend_rate_k=Decimal(3), min_history_hours=3, error_rate=None)
    registry = BreakerRegistry(config, clock=lambda: now[0], postmortem_dir=None)
    real = serve(ROOMY, breakers=registry)
    client = real.openai()
    for hours_ago in (3, 2, 1):  # one call an hour: the baseline
        now[0] = 1_900_000_000.0 - hours_ago * 3600
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        real.events()  # the settle (and the breaker's record) follows the answer: let it see this hour's clock
    now[0] = 1_900_000_000.0
    answers = []
    for _ in range(6):
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
        answers.append(raw.headers.get("x-fiscus-guard"))
    (trip,) = [e for e in events if isinstance(e, BreakerTripped) and e.scope == "agent:support-bot"]
    assert trip.reason == "spend_rate"
    assert Decimal(trip.details["hour_spend_usd"]) > 3 * Decimal(trip.details["median_hourly_usd"])
    assert answers[:3] == [None] * 3 and answers[-1] == "breaker_open"  # same-sized calls: the 4th trips it
    assert "breaker is open" in raw.parse().choices[0].message.content


def test_repeated_tool_call_stops_the_session(serve: Callable[..., Real], events: list[object]) -> None:
    real = serve(ROOMY)
    client = real.openai(default_headers={"x-fiscus-session": "s-tools"})
    forced = {"type": "function", "function": {"name": "lookup"}}  # an agent stuck on one tool
    messages: list[dict] = [{"role": "user", "content": "Find the overdue invoices."}]
    for attempt in range(1, 6):
        answer = client.chat.completions.create(
            model="gpt-4o-mini", messages=messages, tools=[LOOKUP_TOOL], tool_choice=forced
        )
        message = answer.choices[0].message
        if not message.tool_calls:
            break
        messages.append(message.model_dump(exclude_none=True))
        call = message.tool_calls[0]
        messages.append({"role": "tool", "tool_call_id": call.id, "content": f"no rows (attempt {attempt})"})
    assert attempt == 4  # the 4th request carries the 3rd identical call: refused before it went out
    assert "repeated_tool_call" in message.content and "lookup" in message.content
    (loop,) = [e for e in events if isinstance(e, LoopDetected)]
    assert (loop.kind, loop.session, loop.agent, loop.action) == (
        "repeated_tool_call",
        "s-tools",
        "support-bot",
        "stop",
    )
    again = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # the session stays stopped
    assert "repeated_tool_call" in again.choices[0].message.content
    other = real.openai(default_headers={"x-fiscus-session": "s-other"})
    assert (
        "[fiscus]"
        not in other.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices[0].message.content
    )
    assert [e.status for e in real.events()] == ["ok"] * 3 + ["partial"] * 2 + ["ok"]


def test_ping_pong_between_two_agents(serve: Callable[..., Real], events: list[object]) -> None:
    real = serve(ROOMY)
    critic_key, _ = real.keyring.create(agent="critic", team="growth", environment="test")
    session = {"x-fiscus-session": "s-review"}
    planner = real.openai(default_headers=session)
    critic = anthropic.Anthropic(base_url=real.url, api_key=critic_key, max_retries=0, default_headers=session)
    plan = [{"role": "user", "content": "Please review my launch plan draft and approve it."}]
    review = [{"role": "user", "content": "The launch plan draft needs one more review round, please revise it."}]
    planner.chat.completions.create(model="gpt-4o-mini", messages=plan)
    critic.messages.create(model="claude-haiku-4-5", max_tokens=30, messages=review)
    planner.chat.completions.create(model="gpt-4o-mini", messages=plan)
    stopped = critic.messages.create(model="claude-haiku-4-5", max_tokens=30, messages=review)
    assert stopped.stop_reason == "max_tokens" and "ping_pong" in stopped.content[0].text
    (loop,) = [e for e in events if isinstance(e, LoopDetected)]
    assert loop.kind == "ping_pong" and loop.evidence["agents"] == ["support-bot", "critic"]
    assert [e.status for e in real.events()] == ["ok"] * 3 + ["partial"]
