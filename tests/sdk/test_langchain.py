"""LangChain: the callback handler attributes, settles and refuses; `govern_chat_model` applies every tier."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableLambda

import fiscus
from fiscus.events.cost_event import CallStatus
from fiscus.sdk.langchain import FiscusCallbackHandler, govern_chat_model, usage_from_metadata
from fiscus.usage.model import Usage

TINY = [{"name": "tiny", "scope": {"agent": "a"}, "window": "day", "limit": {"usd": "0.0000001"}}]
USAGE = {
    "input_tokens": 1000,
    "output_tokens": 50,
    "total_tokens": 1050,
    "input_token_details": {"cache_read": 600, "cache_creation": 100},
    "output_token_details": {"reasoning": 20},
}


class ChatFake(GenericFakeChatModel):
    """A chat model that answers from a list and reports usage like a real one, as an OpenAI model."""

    model: str = "gpt-4o-mini"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        return {**super()._get_ls_params(stop=stop, **kwargs), "ls_provider": "openai"}


class ChatBroken(ChatFake):
    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("upstream fell over")


def fake(n: int = 1, usage: dict[str, Any] | None = None) -> ChatFake:
    replies = [AIMessage(content="the sea is grey", usage_metadata=usage or USAGE) for _ in range(n)]
    return ChatFake(messages=iter(replies))


def test_usage_metadata_maps_to_disjoint_parts():
    assert usage_from_metadata(USAGE) == Usage(
        input_tokens=300, cache_read_tokens=600, cache_write_5m_tokens=100, output_tokens=50, reasoning_tokens=20
    )
    one_hour = {**USAGE, "input_token_details": {"cache_creation": 100, "ephemeral_1h_input_tokens": 40}}
    mapped = usage_from_metadata(one_hour)
    assert (mapped.input_tokens, mapped.cache_write_5m_tokens, mapped.cache_write_1h_tokens) == (900, 60, 40)
    assert usage_from_metadata({"input_tokens": 5, "output_tokens": 0, "total_tokens": 5}) == Usage(input_tokens=5)


def test_call_is_admitted_attributed_and_settled(governed):
    governor, ledger, _, breakers = governed()
    handler = FiscusCallbackHandler(agent="researcher", team="growth", governor=governor, breakers=breakers)
    fake().invoke("Colours of the sea?", config={"callbacks": [handler]})
    [event] = ledger.events
    assert event.status is CallStatus.OK and event.provider == "openai" and event.requested_model == "gpt-4o-mini"
    assert event.usage == usage_from_metadata(USAGE)
    assert event.attribution.agent == "researcher" and event.attribution.team == "growth"
    assert event.total_usd > 0 and handler.open_calls == 0


async def test_async_invoke_is_settled(governed):
    governor, ledger, _, breakers = governed()
    handler = FiscusCallbackHandler(agent="r", governor=governor, breakers=breakers)
    await fake().ainvoke("hi", config={"callbacks": [handler]})
    assert [e.status for e in ledger.events] == [CallStatus.OK]


def test_exhausted_budget_stops_the_run(governed):
    governor, ledger, _, breakers = governed(TINY)
    handler = FiscusCallbackHandler(agent="a", governor=governor, breakers=breakers)
    model = fake()
    with pytest.raises(fiscus.BudgetExhausted):
        model.invoke("hi", config={"callbacks": [handler]})
    [event] = ledger.events
    assert event.status is CallStatus.PARTIAL and event.total_usd == 0
    assert len(list(model.messages)) == 1  # the model was never called


def test_block_raises_budget_blocked(governed):
    governor, ledger, _, breakers = governed([dict(TINY[0], thresholds=[{"at": 1.0, "action": "block"}])])
    handler = FiscusCallbackHandler(agent="a", governor=governor, breakers=breakers)
    with pytest.raises(fiscus.BudgetBlocked) as caught:
        fake().invoke("hi", config={"callbacks": [handler]})
    assert caught.value.retry_at is not None and ledger.events[0].status is CallStatus.BLOCKED


def test_model_error_is_settled_as_error(governed):
    governor, ledger, _, breakers = governed()
    handler = FiscusCallbackHandler(agent="r", governor=governor, breakers=breakers)
    with pytest.raises(RuntimeError):
        ChatBroken(messages=iter([])).invoke("hi", config={"callbacks": [handler]})
    [event] = ledger.events
    assert event.status is CallStatus.ERROR and "upstream fell over" in event.error and handler.open_calls == 0


def test_nested_agent_run_is_a_child_session(governed):
    governor, ledger, _, breakers = governed()
    handler = FiscusCallbackHandler(agent="lead", workflow="review", governor=governor, breakers=breakers)
    model = fake(2)
    critic = (RunnableLambda(lambda text: f"Criticise: {text}") | model).with_config(
        metadata={"fiscus_agent": "critic"}
    )
    pipeline = RunnableLambda(lambda text: critic.invoke(model.invoke(text).content))
    pipeline.invoke("a draft", config={"callbacks": [handler]})
    lead, sub = ledger.events
    assert (lead.attribution.agent, sub.attribution.agent) == ("lead", "critic")
    assert {lead.attribution.workflow, sub.attribution.workflow} == {"review"}
    assert sub.attribution.parent_session == lead.attribution.session
    assert sub.attribution.session != lead.attribution.session and lead.attribution.parent_session is None


def test_fiscus_session_ceiling_applies(governed):
    governor, ledger, _, breakers = governed()
    handler = FiscusCallbackHandler(agent="r", governor=governor, breakers=breakers)
    with fiscus.session(workflow="w", ceiling_usd="0.0000001") as s, pytest.raises(fiscus.BudgetExhausted) as caught:
        fake().invoke("hi", config={"callbacks": [handler]})
    assert caught.value.state["session"] == s.id and s.outcome == "ceiling"
    [event] = ledger.events
    assert event.status is CallStatus.PARTIAL and event.attribution.session == s.id


def test_chat_openai_on_the_emulator_with_the_handler(emulator_url, governed):
    langchain_openai = pytest.importorskip("langchain_openai")
    governor, ledger, _, breakers = governed()
    handler = FiscusCallbackHandler(agent="r", governor=governor, breakers=breakers)
    model = langchain_openai.ChatOpenAI(
        model="gpt-4o-mini", base_url=f"{emulator_url}/v1", api_key="sk-test", max_retries=0, max_tokens=40
    )
    reply = model.invoke("Name a colour.", config={"callbacks": [handler]})
    [event] = ledger.events
    assert event.provider == "openai" and event.status is CallStatus.OK
    assert event.usage.output_tokens == reply.usage_metadata["output_tokens"] > 0
    assert event.usage.total_input_tokens == reply.usage_metadata["input_tokens"]


def test_govern_chat_model_applies_the_downgrade(emulator_url, governed):
    langchain_openai = pytest.importorskip("langchain_openai")
    budgets = [
        {
            "name": "down",
            "scope": {"agent": "d"},
            "window": "day",
            "limit": {"usd": 1},
            "thresholds": [{"at": "0.0000001", "action": "downgrade"}, {"at": 1.0, "action": "partial"}],
        }
    ]
    governor, ledger, _, breakers = governed(budgets)
    model = langchain_openai.ChatOpenAI(model="gpt-4o", base_url=f"{emulator_url}/v1", api_key="sk-test", max_retries=0)
    govern_chat_model(model, agent="d", governor=governor, breakers=breakers)
    model.invoke("first")
    second = model.invoke("second")
    assert second.response_metadata["model_name"].startswith("gpt-4o-mini")
    assert [e.served_model for e in ledger.events] == ["gpt-4o", "gpt-4o-mini"]
    chunks = list(model.stream("third"))
    assert chunks and ledger.events[-1].streamed and ledger.events[-1].attribution.agent == "d"
