"""The OpenAI Agents SDK on the emulator: a governed client (every tier) and run hooks (attribute, refuse)."""

from __future__ import annotations

from types import SimpleNamespace

import openai
import pytest
from agents import Agent, ModelSettings, OpenAIChatCompletionsModel, OpenAIResponsesModel, Runner, set_tracing_disabled
from agents.usage import InputTokensDetails, OutputTokensDetails
from agents.usage import Usage as AgentsUsage

import fiscus
from fiscus.events.cost_event import CallStatus
from fiscus.sdk.openai_agents import FiscusRunHooks, usage_from_agents
from fiscus.usage.model import Usage

TINY = [{"name": "tiny", "scope": {"agent": "triage"}, "window": "day", "limit": {"usd": "0.0000001"}}]
DOWNGRADE = [
    {
        "name": "down",
        "scope": {"agent": "writer"},
        "window": "day",
        "limit": {"usd": 1},
        "thresholds": [{"at": "0.0000001", "action": "downgrade"}, {"at": 1.0, "action": "partial"}],
    }
]


@pytest.fixture(autouse=True, scope="module")
def no_tracing():
    set_tracing_disabled(True)
    yield
    set_tracing_disabled(False)


def agent_on(client: openai.AsyncOpenAI, name: str, model: str = "gpt-4o-mini", **settings) -> Agent:
    chat = OpenAIChatCompletionsModel(model=model, openai_client=client)
    return Agent(name=name, instructions="Be brief.", model=chat, model_settings=ModelSettings(**settings))


def test_agents_usage_maps_cached_and_reasoning():
    usage = AgentsUsage(
        requests=1,
        input_tokens=1000,
        input_tokens_details=InputTokensDetails(cached_tokens=400, cache_write_tokens=0),
        output_tokens=90,
        output_tokens_details=OutputTokensDetails(reasoning_tokens=30),
        total_tokens=1090,
    )
    assert usage_from_agents(usage) == Usage(
        input_tokens=600, cache_read_tokens=400, output_tokens=90, reasoning_tokens=30
    )
    assert usage_from_agents(AgentsUsage()) is None


async def test_governed_client_applies_every_tier(async_openai_client, governed):
    governor, ledger, _, breakers = governed(DOWNGRADE)
    client = fiscus.wrap(async_openai_client, agent="writer", governor=governor, breakers=breakers)
    agent = agent_on(client, "writer", model="gpt-4o")
    first = await Runner.run(agent, "Write a haiku about tides.")
    second = await Runner.run(agent, "Write another one.")
    assert first.final_output and second.final_output
    assert [e.served_model for e in ledger.events] == ["gpt-4o", "gpt-4o-mini"]  # downgrade applied for real
    assert all(e.status is CallStatus.OK and e.attribution.agent == "writer" for e in ledger.events)
    assert ledger.events[0].usage.output_tokens == first.context_wrapper.usage.output_tokens


async def test_governed_client_streams_responses(async_openai_client, governed):
    governor, ledger, _, breakers = governed()
    client = fiscus.wrap(async_openai_client, agent="writer", governor=governor, breakers=breakers)
    agent = Agent(name="writer", model=OpenAIResponsesModel(model="gpt-4o-mini", openai_client=client))
    result = Runner.run_streamed(agent, "hi")
    async for _ in result.stream_events():
        pass
    [event] = ledger.events
    assert event.streamed and not event.usage.estimated and event.usage.output_tokens > 0


async def test_governed_client_partial_answer_ends_the_run(async_openai_client, governed):
    governor, ledger, _, breakers = governed(TINY)
    client = fiscus.wrap(async_openai_client, agent="triage", governor=governor, breakers=breakers)
    result = await Runner.run(agent_on(client, "triage"), "hi")
    assert "exhausted" in result.final_output
    assert [e.status for e in ledger.events] == [CallStatus.PARTIAL] and ledger.spent() == 0


async def test_hooks_attribute_each_agent_and_settle(async_openai_client, governed):
    governor, ledger, _, breakers = governed()
    hooks = FiscusRunHooks(team="support", governor=governor, breakers=breakers)
    for name in ("triage", "billing"):
        result = await Runner.run(agent_on(async_openai_client, name, max_tokens=40), "hi", hooks=hooks)
        assert result.final_output
    assert [e.attribution.agent for e in ledger.events] == ["triage", "billing"]
    assert all(e.attribution.team == "support" and e.total_usd > 0 for e in ledger.events)
    assert ledger.events[0].usage.output_tokens == result.context_wrapper.usage.output_tokens
    assert hooks.open_calls == 0


async def test_hooks_refuse_an_exhausted_agent(async_openai_client, governed):
    governor, ledger, _, breakers = governed(TINY)
    hooks = FiscusRunHooks(governor=governor, breakers=breakers)
    with pytest.raises(fiscus.BudgetExhausted):
        await Runner.run(agent_on(async_openai_client, "triage"), "hi", hooks=hooks)
    [event] = ledger.events
    assert event.status is CallStatus.PARTIAL and event.attribution.agent == "triage"
    await Runner.run(agent_on(async_openai_client, "billing"), "hi", hooks=hooks)  # other agents go on
    assert ledger.events[-1].status is CallStatus.OK


async def test_hooks_settle_failed_calls(async_openai_client, governed):
    governor, ledger, _, breakers = governed()
    hooks = FiscusRunHooks(governor=governor, breakers=breakers)
    agent = agent_on(async_openai_client, "triage", extra_headers={"x-emulator-error": "500"})
    with pytest.raises(openai.InternalServerError) as caught:
        await Runner.run(agent, "hi", hooks=hooks)
    assert hooks.open_calls == 1 and await hooks.settle_failed(caught.value) == 1
    [event] = ledger.events
    assert event.status is CallStatus.ERROR and event.total_usd == 0 and hooks.open_calls == 0


def test_model_name_from_the_agent():
    from fiscus.sdk.openai_agents import _model_name

    assert _model_name(SimpleNamespace(model="gpt-4.1")) == "gpt-4.1"
    assert _model_name(SimpleNamespace(model=SimpleNamespace(model="gpt-4o"))) == "gpt-4o"
