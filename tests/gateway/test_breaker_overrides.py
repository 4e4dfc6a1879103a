"""Overrides past open breakers and loop stops, through the real gateway and governor with the official SDKs, the
breaker state shared through SQLite (breakers.db beside the budget store) and Redis: an agent's spend-rate breaker
opened by another process refuses every key of the agent until a key is granted an override; that key's calls are
then served on every path (JSON, stream, Anthropic), named in the ledger and announced once, while the other key is
still refused and the breaker stays open. A budget's override covers no breaker; a model's error-rate breaker (an
outage) is never passed; a key's own error-rate breaker and a stopped conversation are passed where the config says
so."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest

from fiscus.events.cost_event import CallStatus
from fiscus.events.guard_events import LoopDetected
from fiscus.events.override_events import OverrideUsed
from fiscus.guards.settings import GuardsConfig
from tests.gateway.conftest import Real, real_gateway

MESSAGES = [{"role": "user", "content": "Close the quarter."}]
POLICY = """
budgets:
  - name: growth-daily
    scope: {team: growth}
    window: day
    limit: {usd: 100}
    thresholds: [{at: 1.0, action: block, override: true}]
"""
TOKEN = "admin-secret"
AGENT_BREAKER = "agent:support-bot"


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/budget.db"
    return f"{request.getfixturevalue('redis_url')}?prefix={request.getfixturevalue('redis_prefix')}"


@pytest.fixture(autouse=True)
def _admin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FISCUS_ADMIN_TOKEN", TOKEN)


def _guards(**fields: object) -> GuardsConfig:
    return GuardsConfig.model_validate({"postmortem_dir": None, "state_refresh_s": 0.2, **fields})


def _until(check: Callable[[], bool], what: str, within: float = 6.0) -> None:
    deadline = time.monotonic() + within  # breaker state is re-read every 0.2 s, overrides every 2 s
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _partial_code(client: openai.OpenAI, **kw: object) -> str | None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=10, **kw)
    return raw.headers.get("x-fiscus-partial")


def _grant_key(real: Real, key_id: str) -> str:
    admin = httpx.Client(base_url=real.url + "/admin", headers={"authorization": f"Bearer {TOKEN}"})
    granted = admin.post("/overrides", json={"key_id": key_id, "for": "1h", "reason": "incident drill"})
    assert granted.status_code == 201, granted.text
    return str(granted.json()["id"])


def _breakers(real: Real) -> dict[str, str]:
    states = httpx.get(real.url + "/admin/breakers", headers={"authorization": f"Bearer {TOKEN}"}).json()
    return {b["scope"]: b["state"] for b in states}


@pytest.fixture
def opened(store: str, tmp_path: Path, emulator_url: str) -> Iterator[tuple[Real, GuardsConfig, list[object]]]:
    """A gateway whose config marks the agent's spend rate overridable, and the agent's breaker opened by another
    process on the shared state (as a worker that saw the burst would)."""
    guards = _guards(
        overridable=["agent_spend_rate"], breakers={"global": {"error_rate": 0.5, "error_window": 4, "min_calls": 4}}
    )
    seen: list[object] = []
    with real_gateway(tmp_path, emulator_url, POLICY, store, config_update={"guards": guards}) as real:
        real.governor.add_listener(seen.append)
        other = guards.breaker_registry(budget_store=store)
        try:
            other.trip("support-bot", "spend_rate", "spend this hour $9 is above 3 × the median hourly spend $1")
        finally:
            other.close()
        yield real, guards, seen


def test_a_key_override_passes_an_open_agent_breaker_on_every_path_and_only_for_that_key(
    opened: tuple[Real, GuardsConfig, list[object]],
) -> None:
    real, _, seen = opened
    (mine,) = real.keyring.list()
    theirs_secret, their_key = real.keyring.create(agent="support-bot", team="growth", environment="test")
    theirs = openai.OpenAI(base_url=real.url + "/v1", api_key=theirs_secret, max_retries=0)
    client = real.openai()
    _until(lambda: _partial_code(client) == "breaker_open", "the breaker opened elsewhere is seen")
    assert _partial_code(theirs) == "breaker_open"

    # A budget's override names a budget: it covers no breaker.
    admin = httpx.Client(base_url=real.url + "/admin", headers={"authorization": f"Bearer {TOKEN}"})
    budget_grant = admin.post("/overrides", json={"budget": "growth-daily", "for": "1h", "reason": "launch"})
    assert budget_grant.status_code == 201
    time.sleep(2.1)
    assert _partial_code(client) == "breaker_open"

    override_id = _grant_key(real, str(mine.id))
    _until(lambda: _partial_code(client) is None, "the key's override is read in")
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=10)
    assert answer.choices[0].finish_reason and "[fiscus]" not in (answer.choices[0].message.content or "")
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, max_tokens=10, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert "fiscus" not in (chunks[-1].model_extra or {})
    reply = real.anthropic().messages.create(model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES)
    assert reply.usage.output_tokens > 0 and "fiscus" not in (reply.model_extra or {})

    assert _partial_code(theirs) == "breaker_open"  # the other key of the agent: still refused
    assert _breakers(real)[AGENT_BREAKER] == "open"  # and the breaker still open for everyone else

    events = real.events()
    passed = [e for e in events if e.tags.get("override")]
    assert [e.tags["override"] for e in passed] == [override_id] * 4  # the first pass and the three paths
    assert all(e.status is CallStatus.OK and e.attribution.api_key == mine.id and e.total_usd > 0 for e in passed)
    refused = [e for e in events if e.status is CallStatus.PARTIAL]
    assert all(e.total_usd == 0 and "override" not in e.tags for e in refused)
    assert {e.attribution.api_key for e in refused} == {mine.id, their_key.id}
    assert refused[-1].attribution.api_key == their_key.id
    spent = sum((e.cost.total for e in events), Decimal(0))
    (growth,) = [s for s in real.governor.status() if s.budget == "growth-daily"]
    assert spent > 0 and growth.spent.nanos == int(spent * 10**9) and growth.reserved.nanos == 0
    used = [e for e in seen if isinstance(e, OverrideUsed)]
    assert [(u.id, u.guards, u.budgets, u.key_id) for u in used] == [(override_id, (AGENT_BREAKER,), (), mine.id)]


def test_a_model_outage_is_never_passed(opened: tuple[Real, GuardsConfig, list[object]]) -> None:
    real, _, _ = opened
    (mine,) = real.keyring.list()
    client = real.openai()
    _until(lambda: _partial_code(client) == "breaker_open", "the breaker opened elsewhere is seen")
    _grant_key(real, str(mine.id))
    _until(lambda: _partial_code(client) is None, "the key's override is read in")
    failing = real.openai(default_headers={"x-emulator-error": "500"})
    for _ in range(4):  # past the agent's breaker, to a provider that fails: the model's breaker opens
        with pytest.raises(openai.InternalServerError):
            failing.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=10)
    with pytest.raises(openai.InternalServerError) as outage:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=10)
    assert outage.value.status_code == 503 and outage.value.body["code"] == "provider_unavailable"
    assert _partial_code(client) is None  # another model: the override still passes the agent's breaker
    assert _breakers(real)[AGENT_BREAKER] == "open"


def test_a_keys_own_error_rate_breaker_and_a_stopped_conversation_are_passed_when_marked(
    tmp_path: Path, emulator_url: str
) -> None:
    guards = _guards(
        overridable=["key_error_rate", "loop"],
        breakers={"per_key": {"error_rate": 0.5, "error_window": 4, "min_calls": 4}, "on_open": "block"},
    )
    store = f"sqlite:///{tmp_path}/budget.db"
    seen: list[object] = []
    with real_gateway(
        tmp_path, emulator_url, POLICY, store, config_update={"guards": guards}, on_event=seen.append
    ) as real:
        (mine,) = real.keyring.list()
        failing = real.openai(default_headers={"x-emulator-error": "404"})
        for _ in range(4):  # a client bug: its key's own breaker opens
            with pytest.raises(openai.NotFoundError):
                failing.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=10)
        client = real.openai()
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=10)
        assert refused.value.body["code"] == "breaker_open" and f"key:{mine.id}" in refused.value.body["message"]
        override_id = _grant_key(real, str(mine.id))
        _until(lambda: _partial_code(client) is None, "the key's override is read in")

        # One conversation, two keys: the loop it falls into stops it for the other key, not for this one.
        session = {"x-fiscus-session": "s-stuck"}
        looping = real.openai(default_headers=session)
        other_secret, other_key = real.keyring.create(agent="support-bot", team="growth", environment="test")
        other = openai.OpenAI(base_url=real.url + "/v1", api_key=other_secret, max_retries=0, default_headers=session)
        history = [{"role": "user", "content": "Find the overdue invoices."}]
        for _ in range(5):  # the same request again and again: a near-duplicate run
            raw = looping.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=history, max_tokens=10
            )
            assert "x-fiscus-partial" not in raw.headers and raw.parse().usage.completion_tokens > 0
        (loop,) = [e for e in seen if isinstance(e, LoopDetected)]
        assert loop.session == "s-stuck"
        stopped = other.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=history, max_tokens=10)
        assert stopped.headers.get("x-fiscus-partial") == "loop_detected"
        assert _breakers(real)[f"key:{mine.id}"] == "open"
        events = real.events()
    mine_ok = [e for e in events if e.attribution.api_key == mine.id and e.status is CallStatus.OK]
    assert len(mine_ok) == 6 and {e.tags.get("override") for e in mine_ok} == {override_id}
    theirs = [e for e in events if e.attribution.api_key == other_key.id]
    assert [(e.status, e.total_usd, e.tags.get("override")) for e in theirs] == [(CallStatus.PARTIAL, 0, None)]


def test_two_gateway_workers_on_the_shared_state_give_the_same_answers(
    store: str, tmp_path: Path, emulator_url: str
) -> None:
    guards = _guards(overridable=["agent_spend_rate"])
    update = {"guards": guards}
    with (
        real_gateway(tmp_path, emulator_url, POLICY, store, config_update=update) as one,
        real_gateway(tmp_path, emulator_url, POLICY, store, config_update=update) as two,
    ):
        granted_key, refused_key = one.keyring.verify(one.key), one.keyring.verify(two.key)  # one keys database
        assert granted_key is not None and refused_key is not None
        other = guards.breaker_registry(budget_store=store)
        try:
            other.trip("support-bot", "spend_rate", "spend this hour $9 is above 3 × the median hourly spend $1")
        finally:
            other.close()
        granted_id, refused_id = str(granted_key.id), str(refused_key.id)
        by_key = {granted_id: one.key, refused_id: two.key}

        def client(real: Real, key_id: str) -> openai.OpenAI:
            return openai.OpenAI(base_url=real.url + "/v1", api_key=by_key[key_id], max_retries=0)

        for real in (one, two):
            _until(lambda r=real: _partial_code(client(r, granted_id)) == "breaker_open", "each worker sees it")
        override_id = _grant_key(one, granted_id)  # granted through one worker's admin API
        for real in (one, two):
            _until(lambda r=real: _partial_code(client(r, granted_id)) is None, "each worker reads the grant")
            assert _partial_code(client(real, refused_id)) == "breaker_open"
        assert two.governor.ledger.flush(timeout=10)  # type: ignore[union-attr]
        events = one.events()  # both workers write the one ledger
        assert [_breakers(real)[AGENT_BREAKER] for real in (one, two)] == ["open", "open"]
        spent = sum((e.cost.total for e in events), Decimal(0))
        (growth,) = [s for s in one.governor.status() if s.budget == "growth-daily"]
    served = [e for e in events if e.status is CallStatus.OK]
    assert len(served) == 2 and {e.attribution.api_key for e in served} == {granted_id}
    assert {e.tags.get("override") for e in served} == {override_id}
    refused = [e for e in events if e.status is CallStatus.PARTIAL]
    assert refused and all(e.total_usd == 0 and "override" not in e.tags for e in refused)
    assert {e.attribution.api_key for e in refused} == {granted_id, refused_id}
    assert spent > 0 and growth.spent.nanos == int(spent * 10**9) and growth.reserved.nanos == 0


def test_an_answer_from_the_response_cache_past_an_open_breaker_names_the_override(
    store: str, tmp_path: Path, emulator_url: str
) -> None:
    policy = POLICY + "response_cache:\n  triage: {ttl: 10m}\n"
    guards = _guards(overridable=["agent_spend_rate"])
    with real_gateway(tmp_path, emulator_url, policy, store, config_update={"guards": guards}) as real:
        other = guards.breaker_registry(budget_store=store)
        try:
            other.trip("support-bot", "spend_rate", "spend this hour $9 is above 3 × the median hourly spend $1")
        finally:
            other.close()
        (mine,) = real.keyring.list()
        client = real.openai()
        triage = {"x-fiscus-task-class": "triage"}
        _until(lambda: _partial_code(client, extra_headers=triage) == "breaker_open", "the open breaker is seen")
        override_id = _grant_key(real, str(mine.id))
        _until(lambda: _partial_code(client, extra_headers=triage) is None, "the key's override is read in")
        ask = client.chat.completions.with_raw_response.create
        miss = ask(model="gpt-4o-mini", messages=MESSAGES, max_tokens=10, temperature=0, extra_headers=triage)
        assert miss.headers["x-fiscus-cache"] == "miss"
        hit = ask(model="gpt-4o-mini", messages=MESSAGES, max_tokens=10, temperature=0, extra_headers=triage)
        assert hit.headers["x-fiscus-cache"] == "hit" and hit.headers["x-fiscus-cost-usd"] == "0"
        events = real.events()
    (cached,) = [e for e in events if e.status is CallStatus.CACHE_HIT]
    assert cached.tags["override"] == override_id and cached.tags["response_cache"] == "hit"
    assert cached.total_usd == 0 and cached.attribution.api_key == mine.id
