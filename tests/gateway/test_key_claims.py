"""A key's requests claim only what the key allows, through the real gateway and governor with the official SDKs:
a default key that renames its agent on every request is refused (403 in each provider's format, naming the
header) and its agent's budget holds; a key allowed `research-*` may rename itself within that, and an
`api_key` budget still binds it whatever it claims; a key set to ignore keeps its own agent and says so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from fiscus.keys import KeyClaims
from tests.gateway.conftest import Real, serve_real

MESSAGES = [{"role": "user", "content": "Summarise the quarter."}]
POLICY = """
version: 1
budgets:
  - name: per-agent-daily
    scope: {agent: "*"}
    window: day
    limit: {requests: 3}
    thresholds: [{at: 1.0, action: block}]
  - name: per-key-daily
    scope: {api_key: "*"}
    window: day
    limit: {requests: 4}
    thresholds: [{at: 1.0, action: block}]
"""


@pytest.fixture(params=["sqlite", "redis"])
def real(request: pytest.FixtureRequest, tmp_path: Path, emulator_url: str) -> Iterator[Real]:
    if request.param == "sqlite":
        store = f"sqlite:///{tmp_path}/budget.db"
    else:
        store = f"{request.getfixturevalue('redis_url')}?prefix={request.getfixturevalue('redis_prefix')}"
    yield from serve_real(tmp_path, emulator_url, POLICY, store)


def _client(real: Real, key: str, agent: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=real.url + "/v1", api_key=key, max_retries=0, default_headers={"x-fiscus-agent": agent}
    )


def test_a_default_key_cannot_rename_itself_out_of_its_budget(real: Real) -> None:
    for n in range(5):  # a new agent name on every request: refused, never served
        with pytest.raises(openai.PermissionDeniedError) as caught:
            _client(real, real.key, f"agent-{n}").chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        error = caught.value.body
        assert caught.value.status_code == 403 and error["param"] == "x-fiscus-agent"
        assert error["code"] == "attribution_not_allowed"
        assert f"x-fiscus-agent: 'agent-{n}' is not allowed for key" in error["message"]
    claude = anthropic.Anthropic(
        base_url=real.url, api_key=real.key, max_retries=0, default_headers={"x-fiscus-team": "elsewhere"}
    )
    with pytest.raises(anthropic.PermissionDeniedError) as refused:
        claude.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=MESSAGES)
    assert refused.value.body["error"]["type"] == "permission_error"
    assert "x-fiscus-team: 'elsewhere'" in refused.value.body["error"]["message"]

    own = _client(real, real.key, "support-bot")  # its own agent, sent explicitly: fine
    for _ in range(3):
        own.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError):
        own.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    events = real.events()
    assert [e.status for e in events] == ["ok", "ok", "ok", "blocked"]
    assert {e.attribution.agent for e in events} == {"support-bot"}


def test_an_allow_list_lets_a_key_rename_within_it_and_its_key_budget_binds(real: Real) -> None:
    secret, key = real.keyring.create(
        agent="research-main", team="lab", environment="test", claims=KeyClaims.of({"agent": ["research-*"]})
    )
    served = []
    for n in range(6):  # a fresh agent budget each time, but one key budget of 4 requests
        try:
            _client(real, secret, f"research-{n}").chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            served.append(n)
        except openai.RateLimitError as exc:
            assert "per-key-daily" in exc.body["message"]
    assert served == [0, 1, 2, 3]
    with pytest.raises(openai.PermissionDeniedError, match=r"may claim research-\*"):
        _client(real, secret, "support-bot").chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    events = real.events()
    assert [e.status for e in events] == ["ok"] * 4 + ["blocked"] * 2
    assert [e.attribution.agent for e in events] == [f"research-{n}" for n in range(6)]
    assert {e.attribution.api_key for e in events} == {key.id}
    key_budget = [s for s in real.governor.status() if s.budget == "per-key-daily"]
    assert [(s.values, s.spent.requests, s.reserved.requests) for s in key_budget] == [((("api_key", key.id),), 4, 0)]


def test_a_key_set_to_ignore_keeps_its_own_agent_and_names_the_header(real: Real) -> None:
    secret, key = real.keyring.create(
        agent="triage", team="support", environment="test", claims=KeyClaims.of({}, "ignore")
    )
    client = _client(real, secret, "someone-else")
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raw.status_code == 200 and raw.headers["x-fiscus-ignored-headers"] == "x-fiscus-agent"
    with anthropic.Anthropic(
        base_url=real.url, api_key=secret, max_retries=0, default_headers={"x-fiscus-agent": "someone-else"}
    ) as claude:
        answer = claude.messages.with_raw_response.create(model="claude-haiku-4-5", max_tokens=20, messages=MESSAGES)
    assert answer.headers["x-fiscus-ignored-headers"] == "x-fiscus-agent"
    events = real.events()
    assert [(e.status, e.attribution.agent, e.attribution.api_key) for e in events] == [("ok", "triage", key.id)] * 2
