"""Overrides past open breakers on the SDK path, exactly as at the gateway: an agent's spend-rate breaker opened by
another process (shared through SQLite breakers.db or Redis) refuses wrapped official `openai` clients until the
key a client is wrapped with is granted an override (`fiscus overrides grant --key`); its calls are then served on
`create`, streams, `with_raw_response` and inside `fiscus.session()`, the ledger names the override, its first use
is announced once with the breaker it passed, a client without the key is still refused, and the breaker stays
open. A loop stop inside a session is passed where the config marks `loop` overridable."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import openai
import pytest

import fiscus
from fiscus.cli.main import main
from fiscus.config import load_config
from fiscus.events.cost_event import CallStatus
from fiscus.events.guard_events import LoopDetected
from fiscus.events.override_events import OverrideUsed
from fiscus.keys import open_key_store
from fiscus.sdk.session import add_listener, remove_listener

MESSAGES = [{"role": "user", "content": "Close the quarter."}]
POLICY = """
budgets:
  - name: growth-daily
    scope: {team: growth}
    window: day
    limit: {usd: 100}
"""


@pytest.fixture(params=["sqlite", "redis"])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if request.param == "sqlite":
        store = f"sqlite:///{tmp_path}/budget.db"
    else:
        store = f"{request.getfixturevalue('redis_url')}?prefix={request.getfixturevalue('redis_prefix')}"
    (tmp_path / "policy.yaml").write_text(POLICY, encoding="utf-8")
    path = tmp_path / "fiscus.yaml"
    path.write_text(
        f"ledger: sqlite:///{tmp_path}/ledger.db\nbudget_store: {store}\nkeys: sqlite:///{tmp_path}/keys.db\n"
        f"policy: {tmp_path / 'policy.yaml'}\n"
        "guards:\n  postmortem_dir: null\n  state_refresh_s: 0.2\n  overridable: [agent_spend_rate, loop]\n",
        encoding="utf-8",
    )
    return path


def _key(config: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["keys", "create", "--agent", "closer", "--team", "growth", "--env", "prod", "--config",
                 str(config)]) == 0  # fmt: skip
    capsys.readouterr()
    with open_key_store(f"sqlite:///{config.parent}/keys.db") as keys:
        (key,) = keys.list()
    return str(key.id)


def _grant(config: Path, capsys: pytest.CaptureFixture[str], key_id: str) -> str:
    code = main(["overrides", "grant", "--key", key_id, "--for", "1h", "--reason", "incident drill", "--config",
                 str(config)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("granted ov_"), out
    return out.split()[1]


def _open_agent_breaker(config: Path) -> None:
    """The agent's breaker, opened by another process on the shared breaker state."""
    settings = load_config(config)
    other = settings.guards.breaker_registry(budget_store=settings.budget_store)
    try:
        other.trip("closer", "spend_rate", "spend this hour $9 is above 3 × the median hourly spend $1")
    finally:
        other.close()


def _code(answer: object) -> str | None:
    marker = (getattr(answer, "model_extra", None) or {}).get("fiscus")
    return marker["code"] if marker else None


def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 6  # breaker state re-read every 0.2 s, overrides every 2 s
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _client(emulator_url: str, config: Path, **who: str) -> openai.OpenAI:
    raw = openai.OpenAI(base_url=f"{emulator_url}/v1", api_key="k", max_retries=0)
    return fiscus.wrap(raw, team="growth", agent="closer", config=config, **who)


def test_a_key_override_passes_an_open_agent_breaker_on_every_sdk_path(
    config: Path, emulator_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    key_id = _key(config, capsys)
    keyed, plain = _client(emulator_url, config, key_id=key_id), _client(emulator_url, config)
    governor = keyed.fiscus_gate.governor
    seen: list[object] = []
    costs: list[fiscus.CostEvent] = []
    governor.add_listener(seen.append)
    governor.add_cost_listener(costs.append)

    def ask(client: openai.OpenAI) -> object:
        return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=10)

    assert _code(ask(keyed)) is None
    _open_agent_breaker(config)
    _until(lambda: _code(ask(keyed)) == "breaker_open", "the breaker opened elsewhere is seen")
    assert _code(ask(plain)) == "breaker_open"
    override_id = _grant(config, capsys, key_id)
    _until(lambda: _code(ask(keyed)) is None, "the key's override is read in")

    stream = keyed.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, max_tokens=10, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0 and _code(chunks[-1]) is None
    raw = keyed.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=10)
    assert "x-fiscus-partial" not in raw.headers and raw.parse().usage.completion_tokens > 0
    with fiscus.session(agent="closer") as s:
        answer = ask(keyed)
        assert _code(answer) is None and not s.partial and s.cost > 0
        assert _code(ask(plain)) == "breaker_open"  # the same session, no key: still refused
    assert _code(ask(plain)) == "breaker_open"
    assert keyed.fiscus_gate.breakers.breaker("agent:closer").state == "open"  # open for everyone else

    assert governor.ledger.flush(timeout=10)
    mine = [e for e in costs if e.attribution.api_key == key_id]
    lifted = [e for e in mine if e.tags.get("override")]
    assert len(lifted) == 4 and {e.tags["override"] for e in lifted} == {override_id}  # first pass + 3 paths
    assert all(e.status is CallStatus.OK and e.total_usd > 0 for e in lifted)
    assert [bool(e.tags.get("override")) for e in mine][-4:] == [True] * 4
    before = [e.status for e in mine if not e.tags.get("override")]  # served until the trip was read, then refused
    served = before.count(CallStatus.OK)
    assert served >= 1 and before == [CallStatus.OK] * served + [CallStatus.PARTIAL] * (len(before) - served) != []
    refused = [e for e in costs if e.status is CallStatus.PARTIAL]
    assert refused and all(e.total_usd == 0 and "override" not in e.tags for e in refused)
    assert sum(1 for e in refused if e.attribution.api_key is None) == 3
    used = [e for e in seen if isinstance(e, OverrideUsed)]
    assert [(u.id, u.guards, u.key_id) for u in used] == [(override_id, ("agent:closer",), key_id)]


def test_a_loop_stop_in_a_session_is_passed_for_the_key_only(
    config: Path, emulator_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    key_id = _key(config, capsys)
    keyed, plain = _client(emulator_url, config, key_id=key_id), _client(emulator_url, config)
    seen: list[object] = []
    costs: list[fiscus.CostEvent] = []
    add_listener(seen.append)
    keyed.fiscus_gate.governor.add_cost_listener(costs.append)
    override_id = _grant(config, capsys, key_id)

    def ask(client: openai.OpenAI) -> object:
        return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=10)

    try:
        with fiscus.session(agent="closer") as s:
            for _ in range(5):  # the same request again and again: the session's loop check stops it
                answer = ask(keyed)
                assert _code(answer) is None and answer.usage.completion_tokens > 0
            assert s.ended_as == "loop"  # stopped, for every caller without leave
            assert _code(ask(plain)) == "loop_detected"
            assert _code(ask(keyed)) is None
    finally:
        remove_listener(seen.append)
    (loop,) = [e for e in seen if isinstance(e, LoopDetected)]
    assert loop.session == s.id
    assert keyed.fiscus_gate.governor.ledger.flush(timeout=10)
    mine = [e for e in costs if e.attribution.api_key == key_id]
    assert len(mine) == 6 and all(e.status is CallStatus.OK and e.total_usd > 0 for e in mine)
    lifted = [e.tags.get("override") for e in mine]
    first = lifted.index(override_id)  # the call the loop check stopped, and every one after it
    assert 1 < first < 5 and lifted[first:] == [override_id] * (6 - first) and lifted[:first] == [None] * first
    (theirs,) = [e for e in costs if e.attribution.api_key is None]
    assert theirs.status is CallStatus.PARTIAL and theirs.total_usd == 0 and "override" not in theirs.tags
