"""Guards at the gateway, through the official SDKs on the real governor: budget refusals scoped to the
exhausted budget instance (no breaker opens), breakers that open on provider-side error rate per model and on
spend rate and then refuse at once (a spend-rate breaker by `on_open`: partial, or 429 in the client's format;
a model's error-rate breaker with a 503, an outage), loops in a session (repeated tool
calls, ping-pong between two agents) answered with a partial naming the loop. Every refusal is one ledger event."""

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
from tests.gateway.conftest import Real, real_gateway, serve_real

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


PER_USER = """
version: 1
budgets:
  - name: per-user-daily
    scope: {user: "*", team: growth}
    window: day
    limit: {requests: 1}
    thresholds:
      - {at: 1.0, action: block}
"""


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_an_exhausted_user_is_refused_and_another_user_of_the_same_agent_served(
    backend: str, tmp_path: Path, emulator_url: str, events: list[object], request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        store = f"sqlite:///{tmp_path}/budget.db"
    else:
        store = f"{request.getfixturevalue('redis_url')}?prefix={request.getfixturevalue('redis_prefix')}"
    with real_gateway(tmp_path, emulator_url, PER_USER, store, on_event=events.append) as real:
        u1 = real.openai(default_headers={"x-fiscus-user": "u1"})
        u2 = real.openai(default_headers={"x-fiscus-user": "u2"})
        u1.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        with pytest.raises(openai.RateLimitError) as refused:
            u1.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert "x-fiscus-guard" not in refused.value.response.headers  # the budget's refusal, not a breaker's
        served = u2.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert served.choices[0].message.content
        with pytest.raises(openai.RateLimitError):
            u2.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert not [e for e in events if isinstance(e, BreakerTripped)]
        recorded = real.events()
    assert [(e.attribution.user, e.status) for e in recorded] == [
        ("u1", "ok"),
        ("u1", "blocked"),
        ("u2", "ok"),
        ("u2", "blocked"),
    ]


def test_ten_upstream_404s_open_no_breaker(serve: Callable[..., Real], events: list[object]) -> None:
    config = BreakerConfig(error_rate=0.5, error_window=4, min_calls=4, spend_rate_k=None)
    real = serve(ROOMY, breakers=config, on_breaker_open="block")
    failing = real.openai(default_headers={"x-emulator-error": "404"})
    for _ in range(10):
        with pytest.raises(openai.NotFoundError):
            failing.responses.create(model="gpt-4o-mini", input="Find the overdue invoices.")
    assert not [e for e in events if isinstance(e, BreakerTripped)]
    served = real.openai().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert served.choices[0].message.content
    assert [e.status for e in real.events()] == ["error"] * 10 + ["ok"]


def test_upstream_5xx_opens_only_that_models_breaker(
    serve: Callable[..., Real], events: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = BreakerConfig(error_rate=0.5, error_window=4, min_calls=4, spend_rate_k=None)
    real = serve(ROOMY, breakers=config, on_breaker_open="block")
    failing = real.openai(default_headers={"x-emulator-error": "500"})
    for _ in range(4):
        with pytest.raises(openai.InternalServerError):
            failing.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    trips = {(e.scope, e.reason) for e in events if isinstance(e, BreakerTripped)}
    assert trips == {("model:openai/gpt-4o-mini", "error_rate")}
    # The model's provider is failing: an outage (503), not a refusal, whatever on_open says.
    with pytest.raises(openai.InternalServerError) as caught:
        real.openai().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert caught.value.status_code == 503 and caught.value.body["code"] == "provider_unavailable"
    assert 0 < int(caught.value.response.headers["retry-after"]) <= 300
    other = real.openai().chat.completions.create(model="gpt-4o", messages=MESSAGES)  # another model: served
    assert other.choices[0].message.content
    haiku = real.anthropic().messages.create(model="claude-haiku-4-5", max_tokens=20, messages=MESSAGES)
    assert haiku.content
    assert 'fiscus_breaker_open{breaker="model:openai/gpt-4o-mini"} 1.0' in _metrics(real)
    monkeypatch.setenv("FISCUS_ADMIN_TOKEN", "admin-secret")
    states = httpx.get(real.url + "/admin/breakers", headers={"authorization": "Bearer admin-secret"}).json()
    opened = {b["scope"] for b in states if b["state"] == "open"}
    assert opened == {"model:openai/gpt-4o-mini"}
    assert [e.status for e in real.events()] == ["error"] * 5 + ["ok", "ok"]


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
    assert stopped.stop_reason == "end_turn" and "ping_pong" in stopped.content[0].text
    assert stopped.model_extra["fiscus"]["code"] == "loop_detected"
    (loop,) = [e for e in events if isinstance(e, LoopDetected)]
    assert loop.kind == "ping_pong" and loop.evidence["agents"] == ["support-bot", "critic"]
    assert [e.status for e in real.events()] == ["ok"] * 3 + ["partial"]
