"""One model call is one CostEvent whatever the combination of adapters: a wrapped client alone, the Agents SDK's
hooks alone, hooks + a wrapped client, LangChain's handler alone, `govern_chat_model` alone, handler +
`govern_chat_model` — on a SQLite and a Redis budget store, with exact counts, costs and counters."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, ModelSettings, OpenAIChatCompletionsModel, OpenAIResponsesModel, Runner, set_tracing_disabled

import fiscus
from fiscus.events.cost_event import CallStatus
from fiscus.governor import Governor
from fiscus.guards.registry import BreakerRegistry
from fiscus.money import to_nanos
from fiscus.policy.load import parse_policy
from fiscus.pricing.catalogue import PriceCatalogue
from fiscus.sdk.openai_agents import FiscusRunHooks
from fiscus.stores import open_store
from tests.sdk.conftest import ListLedger

PROMPTS = ["Name a colour.", "Name a tide.", "Name a fish.", "Name a boat.", "Name a wave."]
DAY = [{"name": "day", "scope": {"team": "support"}, "window": "day", "limit": {"usd": 5}}]
TINY = [{"name": "tiny", "scope": {"team": "support"}, "window": "day", "limit": {"usd": "0.0000001"}}]


@pytest.fixture(autouse=True, scope="module")
def no_tracing():
    set_tracing_disabled(True)
    yield
    set_tracing_disabled(False)


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'budgets.db'}"
    redis_url = request.getfixturevalue("redis_url")
    return f"{redis_url}?prefix={request.getfixturevalue('redis_prefix')}"


@pytest.fixture
def on_store(store_url: str, tmp_path: Path):
    """Factory: (governor, ledger, breakers) over the parametrised store for a policy's budgets."""
    opened: list[Any] = []
    is_redis = store_url.startswith("redis")  # each build its own store: its own file or key prefix

    def build(budgets: list[dict[str, Any]]) -> tuple[Governor, ListLedger, BreakerRegistry]:
        ledger = ListLedger()
        store = open_store(store_url.replace("budgets.db", f"budgets{len(opened)}.db") + f"-{len(opened)}" * is_redis)
        opened.append(store)
        governor = Governor(
            policy=parse_policy({"budgets": budgets}), store=store, catalogue=PriceCatalogue(), ledger=ledger
        )
        return governor, ledger, BreakerRegistry(postmortem_dir=tmp_path / "pm")

    yield build
    for store in opened:
        store.close()


def assert_counters(governor: Governor, ledger: ListLedger) -> None:
    """The store's counters equal the ledger: each call counted once, nothing left reserved."""
    [status] = governor.status()
    assert status.spent.requests == len(ledger.events)
    assert status.spent.nanos == sum(to_nanos(e.total_usd) for e in ledger.events)
    assert status.reserved.nanos == 0


def chat_agent(client: Any, name: str = "triage") -> Agent:
    model = OpenAIChatCompletionsModel(model="gpt-4o-mini", openai_client=client)
    return Agent(name=name, instructions="Be brief.", model=model, model_settings=ModelSettings(max_tokens=40))


def assert_priced(ledger: ListLedger, n: int) -> Decimal:
    assert len(ledger.events) == n and all(e.status is CallStatus.OK for e in ledger.events)
    assert all(e.total_usd > 0 and e.usage.output_tokens > 0 and not e.usage.estimated for e in ledger.events)
    return ledger.spent()


async def run_five(agent: Agent, hooks: FiscusRunHooks | None = None) -> int:
    calls = 0
    for prompt in PROMPTS:
        result = await Runner.run(agent, prompt, hooks=hooks)
        calls += len(result.raw_responses)
    return calls


async def test_agents_every_combination_records_each_call_once(async_openai_client, on_store):
    governor, ledger, breakers = on_store(DAY)
    wrapped = fiscus.wrap(async_openai_client, team="support", governor=governor, breakers=breakers)
    assert await run_five(chat_agent(wrapped)) == 5  # wrap alone
    alone = assert_priced(ledger, 5)
    assert {e.attribution.agent for e in ledger.events} == {None}

    governor, ledger, breakers = on_store(DAY)
    hooks = FiscusRunHooks(team="support", governor=governor, breakers=breakers)
    assert await run_five(chat_agent(async_openai_client), hooks) == 5  # hooks alone
    assert assert_priced(ledger, 5) == alone  # the same work costs the same
    assert {e.attribution.agent for e in ledger.events} == {"triage"}

    governor, ledger, breakers = on_store(DAY)
    hooks = FiscusRunHooks(team="support", governor=governor, breakers=breakers)
    wrapped = fiscus.wrap(async_openai_client, team="support", governor=governor, breakers=breakers)
    assert await run_five(chat_agent(wrapped), hooks) == 5  # hooks + wrap: was 10 events
    assert assert_priced(ledger, 5) == alone
    assert {(e.attribution.agent, e.attribution.team) for e in ledger.events} == {("triage", "support")}
    assert hooks.open_calls == 0 and all(not e.usage.estimated for e in ledger.events)
    assert_counters(governor, ledger)


async def test_agents_hooks_and_wrap_on_responses_and_partial(async_openai_client, on_store):
    governor, ledger, breakers = on_store(DAY)
    hooks = FiscusRunHooks(team="support", governor=governor, breakers=breakers)
    wrapped = fiscus.wrap(async_openai_client, governor=governor, breakers=breakers)
    agent = Agent(name="writer", model=OpenAIResponsesModel(model="gpt-4o-mini", openai_client=wrapped))
    assert await run_five(agent, hooks) == 5
    assert len(ledger.events) == 5 and {e.attribution.agent for e in ledger.events} == {"writer"}

    governor, ledger, breakers = on_store(TINY)  # exhausted: the wrapped client's partial answer, not an exception
    hooks = FiscusRunHooks(team="support", governor=governor, breakers=breakers)
    wrapped = fiscus.wrap(async_openai_client, governor=governor, breakers=breakers)
    result = await Runner.run(chat_agent(wrapped), "hi", hooks=hooks)
    assert "exhausted" in result.final_output
    [event] = ledger.events
    assert event.status is CallStatus.PARTIAL and event.total_usd == 0 and event.attribution.agent == "triage"


def test_langchain_every_combination_records_each_call_once(emulator_url, on_store):
    langchain_openai = pytest.importorskip("langchain_openai")
    from fiscus.sdk.langchain import FiscusCallbackHandler, govern_chat_model

    def chat() -> Any:
        return langchain_openai.ChatOpenAI(
            model="gpt-4o-mini", base_url=f"{emulator_url}/v1", api_key="sk-test", max_retries=0, max_tokens=40
        )

    governor, ledger, breakers = on_store(DAY)
    model = govern_chat_model(chat(), team="support", governor=governor, breakers=breakers)
    for prompt in PROMPTS:
        model.invoke(prompt)
    alone = assert_priced(ledger, 5)

    governor, ledger, breakers = on_store(DAY)
    handler = FiscusCallbackHandler(agent="researcher", team="support", governor=governor, breakers=breakers)
    model = chat()
    for prompt in PROMPTS:
        model.invoke(prompt, config={"callbacks": [handler]})
    assert assert_priced(ledger, 5) == alone

    governor, ledger, breakers = on_store(DAY)
    handler = FiscusCallbackHandler(agent="researcher", team="support", governor=governor, breakers=breakers)
    model = govern_chat_model(chat(), governor=governor, breakers=breakers)
    for prompt in PROMPTS:
        model.invoke(prompt, config={"callbacks": [handler]})
    assert assert_priced(ledger, 5) == alone
    assert {(e.attribution.agent, e.attribution.team) for e in ledger.events} == {("researcher", "support")}
    assert len({e.attribution.session for e in ledger.events}) == 5 and handler.open_calls == 0
    assert_counters(governor, ledger)
    chunks = list(model.stream("Name a shell.", config={"callbacks": [handler]}))
    assert chunks and len(ledger.events) == 6 and ledger.events[-1].streamed


async def test_langchain_handler_and_governed_model_answer_partially(emulator_url, on_store):
    langchain_openai = pytest.importorskip("langchain_openai")
    from fiscus.sdk.langchain import FiscusCallbackHandler, govern_chat_model

    governor, ledger, breakers = on_store(TINY)
    handler = FiscusCallbackHandler(team="support", governor=governor, breakers=breakers)
    model = langchain_openai.ChatOpenAI(
        model="gpt-4o-mini", base_url=f"{emulator_url}/v1", api_key="sk-test", max_retries=0
    )
    govern_chat_model(model, governor=governor, breakers=breakers)
    reply = await model.ainvoke("hi", config={"callbacks": [handler]})  # the handler alone would raise
    assert "exhausted" in reply.content
    [event] = ledger.events
    assert event.status is CallStatus.PARTIAL and event.attribution.team == "support"


def test_a_call_around_the_governed_client_is_recorded_by_the_handler(governed):
    from langchain_core.messages import AIMessage, HumanMessage
    from langchain_core.outputs import ChatGeneration, LLMResult

    from fiscus.sdk.claims import GOVERNED_METADATA, governor_token
    from fiscus.sdk.langchain import FiscusCallbackHandler

    governor, ledger, _, breakers = governed()
    handler = FiscusCallbackHandler(agent="r", governor=governor, breakers=breakers)
    run_id = __import__("uuid").uuid4()
    marked = {GOVERNED_METADATA: governor_token(governor), "ls_provider": "openai"}
    handler.on_chat_model_start(
        {}, [[HumanMessage("hi")]], run_id=run_id, metadata=marked, invocation_params={"model": "gpt-4o-mini"}
    )
    assert ledger.events == []  # left to the governed client
    usage = {"input_tokens": 12, "output_tokens": 7, "total_tokens": 19}
    message = AIMessage(content="blue", usage_metadata=usage)
    handler.on_llm_end(LLMResult(generations=[[ChatGeneration(message=message)]]), run_id=run_id)
    [event] = ledger.events  # which never made it: recorded from the callback, once
    assert event.status is CallStatus.OK and event.usage.input_tokens == 12 and event.usage.output_tokens == 7
    assert event.total_usd > 0 and event.attribution.agent == "r" and handler.open_calls == 0


async def test_agents_default_client_governed_with_hooks(async_openai_client, on_store):
    from agents import set_default_openai_api, set_default_openai_client
    from agents.models import _openai_shared

    governor, ledger, breakers = on_store(DAY)
    hooks = FiscusRunHooks(team="support", governor=governor, breakers=breakers)
    before = _openai_shared.get_default_openai_client()
    set_default_openai_client(fiscus.wrap(async_openai_client, governor=governor, breakers=breakers), False)
    set_default_openai_api("chat_completions")
    try:
        agent = Agent(name="billing", instructions="Be brief.", model="gpt-4o-mini")
        assert await run_five(agent, hooks) == 5
    finally:
        set_default_openai_api("responses")
        _openai_shared.set_default_openai_client(before)  # type: ignore[arg-type]
    assert_priced(ledger, 5)
    assert {(e.attribution.agent, e.attribution.team) for e in ledger.events} == {("billing", "support")}
    assert_counters(governor, ledger)
