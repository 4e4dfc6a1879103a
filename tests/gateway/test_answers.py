"""Every situation, one answer, through the real gateway and the official SDK clients, on SQLite and Redis, JSON
and stream: an upstream outage is an error in the client's protocol (502/503/504, 529 to Anthropic clients when
the provider said overloaded) with retry-after and counted in /metrics, never a 200; a `block` refusal is a 429
with a machine-readable code; a `partial` refusal is a finished answer with the `fiscus` marker and the
x-fiscus-partial header, never a fake length cap."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from fiscus.config import ProviderConfig, StoreConfig
from fiscus.guards import BreakerConfig, BreakerRegistry, LoopConfig
from tests.gateway.conftest import UPSTREAM_KEY_ENV, Real, real_gateway

MESSAGES = [{"role": "user", "content": "Find the overdue invoices."}]
ROOMY = """
version: 1
budgets:
  - {name: growth-daily, scope: {team: growth}, window: day, limit: {usd: 100}}
"""
NO_BREAKERS = BreakerConfig(error_rate=None, spend_rate_k=None)


def _policy(action: str, window: str = "day", scope: str = "{team: growth}") -> str:
    return f"""
version: 1
budgets:
  - name: one-call
    scope: {scope}
    window: {window}
    limit: {{requests: 1}}
    thresholds: [{{at: 1.0, action: {action}}}]
"""


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/budget.db"
    return f"{request.getfixturevalue('redis_url')}?prefix={request.getfixturevalue('redis_prefix')}"


@pytest.fixture
def metrics_token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FISCUS_METRICS_TOKEN", "metrics-secret")
    return "metrics-secret"


def _failures(real: Real, token: str) -> dict[tuple[str, str], float]:
    text = httpx.get(real.url + "/metrics", headers={"authorization": f"Bearer {token}"}).text
    found = re.findall(r'fiscus_upstream_failures_total\{provider="([^"]+)",reason="([^"]+)"\} ([0-9.]+)', text)
    return {(provider, reason): float(n) for provider, reason, n in found}


def _steer(real: Real, status: int, **kw: object) -> openai.OpenAI:
    return real.openai(default_headers={"x-emulator-error": str(status)}, **kw)


@pytest.mark.parametrize(("upstream", "answer"), [(500, 502), (502, 502), (503, 503), (504, 504), (529, 503)])
def test_an_upstream_5xx_is_an_error_with_retry_after_on_json_and_stream(
    upstream: int, answer: int, tmp_path: Path, emulator_url: str, store: str, metrics_token: str
) -> None:
    with real_gateway(tmp_path, emulator_url, ROOMY, store, breakers=NO_BREAKERS) as real:
        client = _steer(real, upstream)
        for stream in (False, True):
            with pytest.raises(openai.InternalServerError) as caught:
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=stream)
            assert caught.value.status_code == answer
            assert int(caught.value.response.headers["retry-after"]) >= 1
            assert caught.value.response.headers["x-fiscus-cost-usd"] == "0"
        with pytest.raises(openai.InternalServerError) as caught:
            client.responses.create(model="gpt-4o-mini", input="Find the overdue invoices.")
        assert caught.value.status_code == answer and "retry-after" in caught.value.response.headers
        reason = {500: "server_error", 502: "server_error", 503: "unavailable", 504: "timeout", 529: "overloaded"}
        assert _failures(real, metrics_token) == {("openai", reason[upstream]): 3.0}
        events = real.events()
    assert [(e.status, e.total_usd) for e in events] == [("error", 0)] * 3


def test_anthropic_overloaded_is_529_and_a_rate_limit_passes_with_its_retry_after(
    tmp_path: Path, emulator_url: str, store: str, metrics_token: str
) -> None:
    with real_gateway(tmp_path, emulator_url, ROOMY, store, breakers=NO_BREAKERS) as real:
        overloaded = real.anthropic(default_headers={"x-emulator-error": "529"})
        for stream in (False, True):
            with pytest.raises(anthropic.OverloadedError) as caught:
                overloaded.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=MESSAGES, stream=stream)
            assert caught.value.status_code == 529 and caught.value.body["error"]["type"] == "overloaded_error"
            assert int(caught.value.response.headers["retry-after"]) >= 1
        limited = real.openai(default_headers={"x-emulator-error": "429", "x-emulator-retry-after": "7"})
        with pytest.raises(openai.RateLimitError) as refused:
            limited.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert refused.value.response.headers["retry-after"] == "7"
        with pytest.raises(openai.NotFoundError) as missing:  # a 4xx the request caused: relayed as it is
            _steer(real, 404).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert "retry-after" not in missing.value.response.headers
        assert _failures(real, metrics_token) == {("anthropic", "overloaded"): 2.0, ("openai", "rate_limited"): 1.0}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_timeout_is_504_and_a_dead_provider_502(tmp_path: Path, emulator_url: str, metrics_token: str) -> None:
    providers = {
        "openai": ProviderConfig(
            kind="openai",
            base_url=f"{emulator_url}/v1",
            api_key_env=UPSTREAM_KEY_ENV,
            models=["gpt-4o-mini"],
            max_retries=0,
            timeout_read_s=0.3,
        ),
        "dead": ProviderConfig(
            kind="openai",
            base_url=f"http://127.0.0.1:{_closed_port()}/v1",
            api_key_env=UPSTREAM_KEY_ENV,
            models=["gpt-4o"],
            max_retries=0,
            timeout_connect_s=1,
        ),
    }
    store = f"sqlite:///{tmp_path}/budget.db"
    update = {"providers": providers}
    with real_gateway(tmp_path, emulator_url, ROOMY, store, config_update=update, breakers=NO_BREAKERS) as real:
        slow = real.openai(default_headers={"x-emulator-latency-ms": "2000"})
        for stream in (False, True):
            with pytest.raises(openai.InternalServerError) as caught:
                slow.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=stream)
            assert caught.value.status_code == 504 and caught.value.body["code"] == "upstream_timeout"
            assert caught.value.response.headers["retry-after"] == "5"
        with pytest.raises(openai.InternalServerError) as caught:
            real.openai().chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert caught.value.status_code == 502 and caught.value.response.headers["retry-after"] == "5"
        assert _failures(real, metrics_token) == {("openai", "timeout"): 2.0, ("dead", "connection"): 1.0}


def test_an_error_rate_breaker_answers_503_until_it_reopens(
    tmp_path: Path, emulator_url: str, store: str, metrics_token: str
) -> None:
    config = BreakerConfig(error_rate=0.5, error_window=4, min_calls=4, spend_rate_k=None, cooldown_s=120)
    # on_open: partial is for refusals; a failing provider is an outage all the same
    with real_gateway(tmp_path, emulator_url, ROOMY, store, breakers=config, on_breaker_open="partial") as real:
        failing = real.anthropic(default_headers={"x-emulator-error": "500"})
        for _ in range(4):
            with pytest.raises(anthropic.InternalServerError):
                failing.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=MESSAGES)
        healthy = real.anthropic()
        for stream in (False, True):
            with pytest.raises(anthropic.APIStatusError) as caught:
                healthy.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=MESSAGES, stream=stream)
            assert caught.value.status_code == 503
            assert caught.value.body["error"]["code"] == "provider_unavailable"
            assert 100 <= int(caught.value.response.headers["retry-after"]) <= 120
            assert caught.value.response.headers["x-fiscus-guard"] == "breaker_open"
        assert real.openai().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices
        assert _failures(real, metrics_token) == {
            ("anthropic", "server_error"): 4.0,
            ("anthropic", "breaker_open"): 2.0,
        }
        events = real.events()
    assert [e.status for e in events] == ["error"] * 6 + ["ok"]


@pytest.fixture
def refusing(tmp_path: Path, emulator_url: str, store: str, request: pytest.FixtureRequest) -> Iterator[Real]:
    action, window = request.param
    scope = '{agent: "*"}' if window == "session" else "{team: growth}"
    with real_gateway(tmp_path, emulator_url, _policy(action, window, scope), store) as real:
        yield real


@pytest.mark.parametrize("refusing", [("block", "day")], indirect=True)
def test_block_is_a_429_with_its_code_and_retry_after(refusing: Real) -> None:
    real = refusing
    real.openai().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    for stream in (False, True):
        with pytest.raises(openai.RateLimitError) as caught:
            real.openai().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=stream)
        assert caught.value.body["code"] == "budget_exhausted"
        assert int(caught.value.response.headers["retry-after"]) >= 1
        assert caught.value.response.headers["x-fiscus-budget"] == "exhausted"
    with pytest.raises(anthropic.RateLimitError) as refused:
        real.anthropic().messages.create(model="claude-haiku-4-5", max_tokens=20, messages=MESSAGES)
    assert refused.value.body["error"]["code"] == "budget_exhausted"
    assert [e.status for e in real.events()] == ["ok"] + ["blocked"] * 3


@pytest.mark.parametrize("refusing", [("partial", "day")], indirect=True)
def test_partial_is_a_finished_answer_with_the_marker(refusing: Real) -> None:
    real = refusing
    real.openai().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    raw = real.openai().chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    completion = raw.parse()
    assert raw.status_code == 200 and raw.headers["x-fiscus-partial"] == "budget_exhausted"
    assert completion.choices[0].finish_reason == "stop"
    marker = completion.model_extra["fiscus"]
    assert marker["partial"] is True and marker["code"] == "budget_exhausted"
    assert "one-call" in marker["message"] and marker["retry_after"] >= 1
    chunks = list(real.openai().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].model_extra["fiscus"]["partial"] is True
    events = list(real.openai().responses.create(model="gpt-4o-mini", input="hi", stream=True))
    assert events[-1].type == "response.completed" and events[-1].response.status == "completed"
    assert events[-1].model_extra["fiscus"]["code"] == "budget_exhausted"
    message_events = list(
        real.anthropic().messages.create(model="claude-haiku-4-5", max_tokens=20, messages=MESSAGES, stream=True)
    )
    delta = next(e for e in message_events if e.type == "message_delta")
    assert delta.delta.stop_reason == "end_turn" and delta.model_extra["fiscus"]["code"] == "budget_exhausted"
    assert [e.status for e in real.events()] == ["ok"] + ["partial"] * 4


@pytest.mark.parametrize("refusing", [("partial", "session"), ("block", "session")], indirect=True)
def test_a_session_ceiling_answers_with_its_own_code(refusing: Real, request: pytest.FixtureRequest) -> None:
    real = refusing
    client = real.openai(default_headers={"x-fiscus-session": "case-7"})
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    if request.node.callspec.params["refusing"][0] == "block":
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert caught.value.body["code"] == "session_ceiling"
    else:
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
        assert raw.headers["x-fiscus-partial"] == "session_ceiling"
        assert raw.parse().model_extra["fiscus"]["code"] == "session_ceiling"
    other = real.openai(default_headers={"x-fiscus-session": "case-8"})  # another session: its own ceiling
    assert other.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices[0].finish_reason
    if request.node.callspec.params["refusing"][0] == "block":  # it never resets: waiting does not help
        assert "retry-after" not in caught.value.response.headers
        assert caught.value.response.headers["x-should-retry"] == "false"


@pytest.mark.parametrize("on_open", ["block", "partial"])
def test_a_spend_rate_breaker_answers_by_on_open(on_open: str, tmp_path: Path, emulator_url: str, store: str) -> None:
    start = time.time()  # the breakers' clock stands still at `start` once the history is written
    now = [start]
    config = BreakerConfig(spend_rate_k=Decimal(3), min_history_hours=3, error_rate=None, cooldown_s=600)
    registry = BreakerRegistry(config, clock=lambda: now[0], postmortem_dir=None)
    with real_gateway(tmp_path, emulator_url, ROOMY, store, breakers=registry, on_breaker_open=on_open) as real:
        client = real.openai()
        for hours_ago in (3, 2, 1):  # one call an hour: the baseline
            now[0] = start - hours_ago * 3600
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            real.events()
        now[0] = start
        for _ in range(4):  # the 4th same-sized call of the hour trips it
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            real.events()
        if on_open == "block":
            with pytest.raises(openai.RateLimitError) as caught:
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            assert caught.value.body["code"] == "breaker_open"
            assert 590 <= int(caught.value.response.headers["retry-after"]) <= 600  # its reopen time
            assert "x-fiscus-budget" not in caught.value.response.headers
        else:
            raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
            assert raw.status_code == 200 and raw.headers["x-fiscus-partial"] == "breaker_open"
            marker = raw.parse().model_extra["fiscus"]
            assert marker["code"] == "breaker_open" and 590 <= marker["retry_after"] <= 600
            assert raw.parse().choices[0].finish_reason == "stop"
        statuses = [e.status for e in real.events()]
    assert statuses == ["ok"] * 7 + ["blocked" if on_open == "block" else "partial"]


def test_a_loop_with_action_raise_is_a_429_without_retry(tmp_path: Path, emulator_url: str) -> None:
    store = f"sqlite:///{tmp_path}/budget.db"
    with real_gateway(tmp_path, emulator_url, ROOMY, store, loops=LoopConfig(action="raise")) as real:
        client = real.openai(default_headers={"x-fiscus-session": "s-dup"})
        asked = [*MESSAGES, {"role": "assistant", "content": "Which ledger?"}, *MESSAGES]
        with pytest.raises(openai.RateLimitError) as caught:
            for _ in range(5):  # the same request again and again: near duplicates
                client.chat.completions.create(model="gpt-4o-mini", messages=asked)
        assert caught.value.body["code"] == "loop_detected"
        assert "retry-after" not in caught.value.response.headers
        assert caught.value.response.headers["x-should-retry"] == "false"
        assert caught.value.response.headers["x-fiscus-guard"] == "loop_detected"
        assert real.events()[-1].status == "blocked"


def test_an_unreachable_budget_store_is_a_503_with_retry_after(tmp_path: Path, emulator_url: str) -> None:
    store = f"redis://127.0.0.1:{_closed_port()}/0?prefix=fiscus-test-gone"
    update = {"store": StoreConfig(pool_wait_s=0.5)}
    with real_gateway(tmp_path, emulator_url, ROOMY, store, config_update=update, breakers=NO_BREAKERS) as real:
        with pytest.raises(openai.InternalServerError) as caught:
            real.openai().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        assert caught.value.status_code == 503 and caught.value.body["code"] == "store_unavailable"
        assert int(caught.value.response.headers["retry-after"]) >= 1
        with pytest.raises(anthropic.InternalServerError) as refused:
            real.anthropic().messages.create(model="claude-haiku-4-5", max_tokens=20, messages=MESSAGES)
        assert refused.value.status_code == 503 and refused.value.body["error"]["code"] == "store_unavailable"
