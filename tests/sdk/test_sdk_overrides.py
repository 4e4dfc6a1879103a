"""Overrides on the SDK path: a grant made with `fiscus overrides grant` on the config's keys database lets
wrapped official `openai` / `anthropic` clients (against the emulator) through every refusal the policy marks
overridable — exactly as on the gateway — on SQLite and Redis budget stores; the ledger names the override, its
first use is announced once, a budget not marked overridable still refuses, and a revocation ends it."""

from __future__ import annotations

import time
from pathlib import Path

import anthropic
import openai
import pytest

import fiscus
from fiscus.cli.main import main
from fiscus.events.cost_event import CallStatus
from fiscus.events.override_events import OverrideUsed
from fiscus.keys import open_key_store

MESSAGES = [{"role": "user", "content": "Close the quarter."}]
POLICY = """
budgets:
  - name: growth-daily
    scope: {team: growth}
    window: day
    limit: {requests: 2}
    thresholds: [{at: 1.0, action: block, override: true}]
  - name: firm-daily
    scope: {agent: firm}
    window: day
    limit: {requests: 1}
    thresholds: [{at: 1.0, action: block}]
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
        f"policy: {tmp_path / 'policy.yaml'}\nguards: {{postmortem_dir: null}}\n",
        encoding="utf-8",
    )
    return path


def grant(config: Path, capsys: pytest.CaptureFixture[str], *target: str) -> str:
    code = main(["overrides", "grant", *target, "--for", "1h", "--reason", "quarter close", "--config", str(config)])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("granted ov_"), out
    return out.split()[1]


def until_passes(call, error: type[Exception]) -> object:
    deadline = time.monotonic() + 6  # the SDK re-reads overrides every 2 s, like the gateway
    while True:
        try:
            return call()
        except error:
            assert time.monotonic() < deadline
            time.sleep(0.2)


def test_a_budget_override_lets_sdk_calls_past_an_overridable_block(
    config: Path, emulator_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[object] = []
    gpt = fiscus.wrap(openai.OpenAI(base_url=f"{emulator_url}/v1", api_key="k", max_retries=0), team="growth",
                      agent="closer", config=config)  # fmt: skip
    costs: list[fiscus.CostEvent] = []
    gpt.fiscus_gate.governor.add_listener(seen.append)
    gpt.fiscus_gate.governor.add_cost_listener(costs.append)
    claude = fiscus.wrap(anthropic.Anthropic(base_url=emulator_url, api_key="k", max_retries=0), team="growth",
                         agent="closer", config=config)  # fmt: skip

    def call_gpt() -> object:
        return gpt.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=10)

    call_gpt()
    call_gpt()
    with pytest.raises(fiscus.BudgetBlocked) as refused:
        call_gpt()
    assert refused.value.code == "budget_exhausted" and "growth-daily" in str(refused.value)
    override_id = grant(config, capsys, "--budget", "growth-daily")
    until_passes(call_gpt, fiscus.BudgetBlocked)
    reply = claude.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES)
    assert reply.stop_reason != "end_turn" or "fiscus" not in (reply.model_extra or {})  # a real answer
    raw = gpt.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=10)
    assert "x-fiscus-partial" not in raw.headers and raw.parse().usage.completion_tokens > 0
    used = [e for e in seen if isinstance(e, OverrideUsed)]
    assert [(u.id, u.budgets) for u in used] == [(override_id, ("growth-daily",))]  # announced once
    firm = fiscus.wrap(openai.OpenAI(base_url=f"{emulator_url}/v1", api_key="k", max_retries=0), agent="firm",
                       config=config)  # fmt: skip
    firm.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=10)
    with pytest.raises(fiscus.BudgetBlocked):  # not marked overridable: still refused
        firm.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=10)
    assert main(["overrides", "revoke", override_id, "--config", str(config)]) == 0
    time.sleep(2.1)
    with pytest.raises(fiscus.BudgetBlocked):
        call_gpt()
    closer = [e for e in costs if e.attribution.agent == "closer"]
    statuses = [e.status for e in closer]  # the retries while the grant was read in were refused, once each
    assert statuses[:3] == [CallStatus.OK, CallStatus.OK, CallStatus.BLOCKED] and statuses[-1] is CallStatus.BLOCKED
    assert statuses.count(CallStatus.OK) == 5 and len(closer) == len(statuses)
    lifted = [e for e in closer if e.tags.get("override") == override_id]
    assert len(lifted) == 3 and all(e.status is CallStatus.OK and e.total_usd > 0 for e in lifted)


def test_a_key_override_covers_the_client_wrapped_with_that_key(
    config: Path, emulator_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "create", "--agent", "closer", "--team", "growth", "--env", "prod", "--config",
                 str(config)]) == 0  # fmt: skip
    capsys.readouterr()
    with open_key_store(f"sqlite:///{config.parent}/keys.db") as keys:
        (key,) = keys.list()
    keyed = fiscus.wrap(openai.AsyncOpenAI(base_url=f"{emulator_url}/v1", api_key="k", max_retries=0),
                        team="growth", key_id=key.id, config=config)  # fmt: skip
    other = fiscus.wrap(openai.OpenAI(base_url=f"{emulator_url}/v1", api_key="k", max_retries=0), team="growth",
                        config=config)  # fmt: skip
    other.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=10)
    other.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=10)
    grant(config, capsys, "--key", key.id)
    import asyncio

    async def keyed_call() -> object:
        return await keyed.responses.create(model="gpt-4o-mini", input="hi", max_output_tokens=64)

    response = until_passes(lambda: asyncio.run(keyed_call()), fiscus.BudgetBlocked)
    assert response.status == "completed" and response.usage.output_tokens > 0  # type: ignore[attr-defined]
    with pytest.raises(fiscus.BudgetBlocked):  # the same budget, another caller: no leave
        other.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=10)


async def test_run_hooks_with_a_key_pass_on_its_override(
    config: Path, emulator_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from agents import Agent, ModelSettings, OpenAIChatCompletionsModel, Runner, set_tracing_disabled

    from fiscus.sdk.openai_agents import FiscusRunHooks

    set_tracing_disabled(True)
    assert main(["keys", "create", "--agent", "closer", "--team", "growth", "--env", "prod", "--config",
                 str(config)]) == 0  # fmt: skip
    capsys.readouterr()
    with open_key_store(f"sqlite:///{config.parent}/keys.db") as keys:
        (key,) = keys.list()
    hooks = FiscusRunHooks(team="growth", key_id=key.id, config=str(config))
    client = openai.AsyncOpenAI(base_url=f"{emulator_url}/v1", api_key="k", max_retries=0)
    model = OpenAIChatCompletionsModel(model="gpt-4o-mini", openai_client=client)
    agent = Agent(name="closer", model=model, model_settings=ModelSettings(max_tokens=10))
    await Runner.run(agent, "one", hooks=hooks)
    await Runner.run(agent, "two", hooks=hooks)
    with pytest.raises(fiscus.BudgetBlocked):
        await Runner.run(agent, "three", hooks=hooks)
    grant(config, capsys, "--key", key.id)
    time.sleep(2.1)  # the grant is read within 2 s
    result = await Runner.run(agent, "four", hooks=hooks)
    assert result.final_output and hooks.open_calls == 0
