"""The partial tier on every framework path: `with_raw_response`, `with_streaming_response` (openai and anthropic,
sync and async) and LangChain's `govern_chat_model` answer a refused call with the documented partial answer — the
SDK's own raw-response object whose headers carry `x-fiscus-partial` and whose `parse()` gives the partial object
with a real ending and the `fiscus` marker — and raise only for `on_exhausted="raise"` or a `block` policy."""

from __future__ import annotations

import anthropic
import openai
import pytest
from anthropic.types import Message
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response

import fiscus
from fiscus.events.cost_event import CallStatus

MESSAGES = [{"role": "user", "content": "Two words about tides."}]
TINY = [{"name": "tiny", "scope": {"agent": "a"}, "window": "day", "limit": {"usd": "0.0000001"}}]
BLOCK = [dict(TINY[0], thresholds=[{"at": 1.0, "action": "block"}])]


def assert_marked(obj, code: str = "budget_exhausted") -> None:
    marker = obj.model_extra["fiscus"]
    assert marker["partial"] is True and marker["code"] == code
    assert "tiny" in marker["message"] and 0 < marker["retry_after"] <= 86_400


def assert_partial_events(ledger, n: int) -> None:
    assert [e.status for e in ledger.events] == [CallStatus.PARTIAL] * n
    assert ledger.spent() == 0


def test_sync_raw_responses_are_the_sdks_own(openai_client, anthropic_client, governed):
    governor, ledger, _, breakers = governed(TINY)
    gpt = fiscus.wrap(openai_client, agent="a", governor=governor, breakers=breakers)
    raw = gpt.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert type(raw) is openai._legacy_response.LegacyAPIResponse and raw.status_code == 200
    assert raw.headers["x-fiscus-partial"] == "budget_exhausted"
    assert raw.headers["x-fiscus-request-id"] == ledger.events[0].id
    chat = raw.parse()
    assert type(chat) is ChatCompletion and chat.choices[0].finish_reason == "stop"
    assert "exhausted" in chat.choices[0].message.content
    assert_marked(chat)
    raw = gpt.responses.with_raw_response.create(model="gpt-4o-mini", input="hi")
    response = raw.parse()
    assert type(response) is Response and response.status == "completed" and "exhausted" in response.output_text
    assert_marked(response)
    claude = fiscus.wrap(anthropic_client, agent="a", governor=governor, breakers=breakers)
    raw = claude.messages.with_raw_response.create(model="claude-haiku-4-5", max_tokens=50, messages=MESSAGES)
    assert type(raw) is anthropic._response.APIResponse and raw.headers["x-fiscus-partial"] == "budget_exhausted"
    message = raw.parse()
    assert type(message) is Message and message.stop_reason == "end_turn"
    assert_marked(message)
    assert_partial_events(ledger, 3)


async def test_async_raw_responses_are_the_sdks_own(async_openai_client, async_anthropic_client, governed):
    governor, ledger, _, breakers = governed(TINY)
    gpt = fiscus.wrap(async_openai_client, agent="a", governor=governor, breakers=breakers)
    raw = await gpt.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raw.headers["x-fiscus-partial"] == "budget_exhausted"
    assert_marked(raw.parse())
    raw = await gpt.responses.with_raw_response.create(model="gpt-4o-mini", input="hi")
    assert raw.parse().status == "completed"
    claude = fiscus.wrap(async_anthropic_client, agent="a", governor=governor, breakers=breakers)
    raw = await claude.messages.with_raw_response.create(model="claude-haiku-4-5", max_tokens=50, messages=MESSAGES)
    assert type(raw) is anthropic._response.AsyncAPIResponse
    message = await raw.parse()
    assert message.stop_reason == "end_turn"
    assert_marked(message)
    assert_partial_events(ledger, 3)


def test_sync_streaming_responses(openai_client, anthropic_client, governed):
    governor, ledger, _, breakers = governed(TINY)
    gpt = fiscus.wrap(openai_client, agent="a", governor=governor, breakers=breakers)
    with gpt.chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=MESSAGES) as raw:
        assert type(raw) is openai._response.APIResponse and raw.headers["x-fiscus-partial"] == "budget_exhausted"
        chat = raw.parse()
    assert type(chat) is ChatCompletion and chat.choices[0].finish_reason == "stop"
    assert_marked(chat)
    streamed = gpt.chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    with streamed as raw:
        chunks = list(raw.parse())
    assert all(type(c) is ChatCompletionChunk for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert_marked(chunks[-1])
    assert "exhausted" in "".join(c.choices[0].delta.content or "" for c in chunks)
    claude = fiscus.wrap(anthropic_client, agent="a", governor=governor, breakers=breakers)
    with claude.messages.with_streaming_response.create(
        model="claude-haiku-4-5", max_tokens=50, messages=MESSAGES
    ) as raw:
        assert raw.headers["x-fiscus-partial"] == "budget_exhausted"
        assert raw.parse().stop_reason == "end_turn"
    assert_partial_events(ledger, 3)


async def test_async_streaming_responses(async_openai_client, async_anthropic_client, governed):
    governor, ledger, _, breakers = governed(TINY)
    gpt = fiscus.wrap(async_openai_client, agent="a", governor=governor, breakers=breakers)
    async with gpt.responses.with_streaming_response.create(model="gpt-4o-mini", input="hi", stream=True) as raw:
        assert raw.headers["x-fiscus-partial"] == "budget_exhausted"
        events = [event async for event in await raw.parse()]
    assert events[-1].type == "response.completed" and events[-1].response.status == "completed"
    claude = fiscus.wrap(async_anthropic_client, agent="a", governor=governor, breakers=breakers)
    async with claude.messages.with_streaming_response.create(
        model="claude-haiku-4-5", max_tokens=50, messages=MESSAGES
    ) as raw:
        message = await raw.parse()
    assert message.stop_reason == "end_turn"
    assert_marked(message)
    assert_partial_events(ledger, 2)


async def test_raise_and_block_raise_on_the_raw_and_streaming_paths(async_openai_client, anthropic_client, governed):
    governor, ledger, _, breakers = governed(TINY)
    gpt = fiscus.wrap(async_openai_client, agent="a", governor=governor, breakers=breakers, on_exhausted="raise")
    with pytest.raises(fiscus.BudgetExhausted) as caught:
        await gpt.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert caught.value.code == "budget_exhausted" and 0 < caught.value.retry_after <= 86_400
    with pytest.raises(fiscus.BudgetExhausted):
        async with gpt.chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=MESSAGES):
            pass
    blocking, blocked_ledger, _, blocking_breakers = governed(BLOCK)
    claude = fiscus.wrap(anthropic_client, agent="a", governor=blocking, breakers=blocking_breakers)
    with pytest.raises(fiscus.BudgetBlocked) as blocked:
        claude.messages.with_raw_response.create(model="claude-haiku-4-5", max_tokens=9, messages=MESSAGES)
    assert isinstance(blocked.value, fiscus.BudgetExhausted) and blocked.value.retry_after is not None
    streaming = claude.messages.with_streaming_response.create(
        model="claude-haiku-4-5", max_tokens=9, messages=MESSAGES
    )
    with pytest.raises(fiscus.BudgetBlocked), streaming:
        pass
    assert_partial_events(ledger, 2)
    assert [e.status for e in blocked_ledger.events] == [CallStatus.BLOCKED] * 2


def test_govern_chat_model_answers_partially(emulator_url, governed):
    langchain_openai = pytest.importorskip("langchain_openai")
    governor, ledger, _, breakers = governed(TINY)
    model = langchain_openai.ChatOpenAI(
        model="gpt-4o-mini", base_url=f"{emulator_url}/v1", api_key="sk-test", max_retries=0
    )
    govern_chat_model = pytest.importorskip("fiscus.sdk.langchain").govern_chat_model
    govern_chat_model(model, agent="a", governor=governor, breakers=breakers)
    reply = model.invoke("Name a colour.")  # ChatOpenAI's with_raw_response path
    assert "exhausted" in reply.content and reply.response_metadata["finish_reason"] == "stop"
    chunks = list(model.stream("Name a colour."))
    assert "exhausted" in "".join(str(c.content) for c in chunks)
    assert_partial_events(ledger, 2)


async def test_govern_chat_model_async_and_raise(emulator_url, governed):
    langchain_openai = pytest.importorskip("langchain_openai")
    from fiscus.sdk.langchain import govern_chat_model

    governor, ledger, _, breakers = governed(TINY)
    model = langchain_openai.ChatOpenAI(
        model="gpt-4o-mini", base_url=f"{emulator_url}/v1", api_key="sk-test", max_retries=0
    )
    govern_chat_model(model, agent="a", governor=governor, breakers=breakers)
    reply = await model.ainvoke("hi")
    assert "exhausted" in reply.content and reply.response_metadata["finish_reason"] == "stop"
    strict = langchain_openai.ChatOpenAI(
        model="gpt-4o-mini", base_url=f"{emulator_url}/v1", api_key="sk-test", max_retries=0
    )
    govern_chat_model(strict, agent="a", governor=governor, breakers=breakers, on_exhausted="raise")
    with pytest.raises(fiscus.BudgetExhausted):
        await strict.ainvoke("hi")
    assert_partial_events(ledger, 2)
