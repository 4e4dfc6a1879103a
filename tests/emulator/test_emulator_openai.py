"""OpenAI Chat Completions and Responses through the official SDK, sync, async and streaming."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from fiscus.emulator.tokens import count_text

LONG_SYSTEM = "Policy paragraph. " * 340  # ~1,530 tokens: over the 1,024-token caching floor


def _ask(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], **extra}


def test_chat_body_usage_is_parsed_and_model_echoed(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(**_ask("Summarise the budget for March"))
    usage = completion.usage
    assert completion.model == "gpt-4o-mini"
    assert completion.object == "chat.completion"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content.startswith("Emulated reply to")
    assert usage is not None and usage.completion_tokens == 24
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details is not None and usage.completion_tokens_details.reasoning_tokens == 0


def test_chat_reply_is_deterministic(oai: openai.OpenAI) -> None:
    first = oai.chat.completions.create(**_ask("same question"))
    second = oai.chat.completions.create(**_ask("same question"))
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.usage == second.usage


def test_chat_stream_with_include_usage_ends_with_usage_chunk(oai: openai.OpenAI) -> None:
    chunks = list(oai.chat.completions.create(**_ask("stream it"), stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 24
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert text.startswith("Emulated reply to")
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 24


def test_chat_stream_without_include_usage_sends_no_usage(oai: openai.OpenAI) -> None:
    chunks = list(oai.chat.completions.create(**_ask("stream it"), stream=True))
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


async def test_async_chat_stream(aoai: openai.AsyncOpenAI) -> None:
    stream = await aoai.chat.completions.create(
        **_ask("async please"), stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 24


@pytest.mark.parametrize("cap_field", ["max_tokens", "max_completion_tokens"])
def test_chat_max_tokens_cuts_with_length(oai: openai.OpenAI, cap_field: str) -> None:
    completion = oai.chat.completions.create(**_ask("long answer please", **{cap_field: 5}))
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 5


def test_chat_reasoning_counts_inside_the_cap(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(
        **_ask("think hard", max_completion_tokens=50), extra_headers={"x-emulator-reasoning-tokens": "40"}
    )
    usage = completion.usage
    assert usage is not None and usage.completion_tokens == 50
    assert usage.completion_tokens_details is not None and usage.completion_tokens_details.reasoning_tokens == 40
    assert completion.choices[0].finish_reason == "length"


def test_chat_forced_output_tokens(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(**_ask("x"), extra_headers={"x-emulator-output-tokens": "300"})
    assert completion.usage is not None and completion.usage.completion_tokens == 300


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_chat_tool_call_by_marker_then_answer_after_result(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(**_ask("Weather? [[tool:get_weather]]"), tools=[WEATHER_TOOL])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "emulated"}
    follow_up = oai.chat.completions.create(
        model="gpt-4o-mini",
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "Weather? [[tool:get_weather]]"},
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
    )
    assert follow_up.choices[0].finish_reason == "stop"


def test_chat_streamed_tool_call(oai: openai.OpenAI) -> None:
    chunks = list(
        oai.chat.completions.create(**_ask("call it"), tools=[WEATHER_TOOL], tool_choice="required", stream=True)
    )
    arguments = "".join(
        c.choices[0].delta.tool_calls[0].function.arguments or "" for c in chunks if c.choices[0].delta.tool_calls
    )
    assert json.loads(arguments) == {"city": "emulated"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_chat_automatic_prefix_caching_in_128_token_steps(oai: openai.OpenAI) -> None:
    def ask(question: str) -> Any:
        messages = [{"role": "system", "content": LONG_SYSTEM}, {"role": "user", "content": question}]
        return oai.chat.completions.create(model="gpt-4o", messages=messages).usage

    first, second, third = ask("q1"), ask("q1"), ask("a different question")
    assert first.prompt_tokens_details.cached_tokens == 0
    cached = second.prompt_tokens_details.cached_tokens
    assert cached >= 1024 and cached % 128 == 0 and second.prompt_tokens - cached < 128
    shared = third.prompt_tokens_details.cached_tokens
    assert shared >= 1024 and shared % 128 == 0 and shared <= count_text(LONG_SYSTEM) + 10


def test_chat_short_prompts_never_cache(oai: openai.OpenAI) -> None:
    oai.chat.completions.create(**_ask("short"))
    usage = oai.chat.completions.create(**_ask("short")).usage
    assert usage is not None and usage.prompt_tokens_details.cached_tokens == 0


def test_models_list(oai: openai.OpenAI) -> None:
    names = [model.id for model in oai.models.list()]
    assert "gpt-4o-mini" in names and not any(name.startswith("claude") for name in names)


def test_responses_body_usage(oai: openai.OpenAI) -> None:
    response = oai.responses.create(model="gpt-4.1", input="Hello from the responses API", instructions="Be brief")
    assert response.status == "completed" and response.model == "gpt-4.1"
    assert response.output_text.startswith("Emulated reply to")
    usage = response.usage
    assert usage is not None and usage.output_tokens == 24
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens == 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


def test_responses_stream_events_and_final_usage(oai: openai.OpenAI) -> None:
    events = list(oai.responses.create(model="gpt-4.1", input="stream me", stream=True))
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.delta") == 24
    assert [event.sequence_number for event in events] == list(range(len(events)))
    final = events[-1].response
    assert final.usage is not None and final.usage.output_tokens == 24
    assert final.output_text == "".join(e.delta for e in events if e.type == "response.output_text.delta")


def test_responses_stream_helper_and_reasoning(oai: openai.OpenAI) -> None:
    with oai.responses.stream(
        model="o4-mini", input="reason", extra_headers={"x-emulator-reasoning-tokens": "12"}
    ) as stream:
        final = stream.get_final_response()
    assert final.output[0].type == "reasoning"
    assert final.usage is not None and final.usage.output_tokens_details.reasoning_tokens == 12
    assert final.usage.output_tokens == 36


def test_responses_max_output_tokens_is_incomplete(oai: openai.OpenAI) -> None:
    response = oai.responses.create(model="gpt-4.1", input="long", max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    assert response.usage is not None and response.usage.output_tokens == 16


def test_responses_function_call(oai: openai.OpenAI) -> None:
    tool = {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}
    response = oai.responses.create(model="gpt-4.1", input="find [[tool:lookup]]", tools=[tool])
    item = response.output[0]
    assert item.type == "function_call" and item.name == "lookup" and item.arguments == "{}"


async def test_responses_async_cached_tokens(aoai: openai.AsyncOpenAI) -> None:
    for expected_zero in (True, False):
        response = await aoai.responses.create(
            model="gpt-4.1", instructions=LONG_SYSTEM, input="q", prompt_cache_key="tenant-a"
        )
        cached = response.usage.input_tokens_details.cached_tokens
        assert (cached == 0) is expected_zero
