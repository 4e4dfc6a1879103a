"""Whole (non-streamed) bodies of each format, normalised to one `Usage` convention."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from fiscus.errors import UsageFormatError
from fiscus.usage import Usage, WireFormat, anthropic, gemini, openai_chat, openai_responses, usage_from_body


def body(load: Callable[[str], bytes], name: str) -> dict:
    return json.loads(load(name))


def test_openai_chat_cached_tokens_are_inside_prompt_tokens(load: Callable[[str], bytes]) -> None:
    usage = openai_chat.usage_from_body(body(load, "openai_chat_body.json"))
    # prompt 2368 of which 1920 cached; completion 913 of which 704 reasoning
    assert usage == Usage(input_tokens=448, cache_read_tokens=1920, output_tokens=913, reasoning_tokens=704)
    assert usage.total_input_tokens == 2368


def test_openai_responses_cached_and_reasoning(load: Callable[[str], bytes]) -> None:
    usage = openai_responses.usage_from_body(body(load, "openai_responses_body.json"))
    assert usage == Usage(input_tokens=176, cache_read_tokens=2944, output_tokens=1587, reasoning_tokens=1344)
    assert usage.total_tokens == 4707


def test_anthropic_input_excludes_cache_and_writes_split_by_ttl(load: Callable[[str], bytes]) -> None:
    usage = anthropic.usage_from_body(body(load, "anthropic_body.json"))
    assert usage == Usage(
        input_tokens=18,
        cache_read_tokens=14210,
        cache_write_5m_tokens=620,
        cache_write_1h_tokens=2000,
        output_tokens=512,
        reasoning_tokens=301,
    )


def test_gemini_thoughts_are_output_and_cached_and_tool_prompts_are_input(load: Callable[[str], bytes]) -> None:
    usage = gemini.usage_from_body(body(load, "gemini_body.json"))
    # prompt 5210 (4096 cached) + 96 tool-use prompt; candidates 287 + thoughts 1023
    assert usage == Usage(input_tokens=1210, cache_read_tokens=4096, output_tokens=1310, reasoning_tokens=1023)
    assert usage.total_tokens == 6616  # the body's totalTokenCount


def test_anthropic_without_ttl_split_counts_all_writes_as_5m() -> None:
    usage = anthropic.usage_from_fields(
        {"input_tokens": 10, "cache_creation_input_tokens": 900, "cache_read_input_tokens": 0, "output_tokens": 5}
    )
    assert (usage.cache_write_5m_tokens, usage.cache_write_1h_tokens) == (900, 0)


def test_anthropic_split_that_disagrees_with_the_total_keeps_the_total() -> None:
    usage = anthropic.usage_from_fields(
        {
            "input_tokens": 1,
            "cache_creation_input_tokens": 900,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 1,
        }
    )
    assert (usage.cache_write_5m_tokens, usage.cache_write_1h_tokens) == (900, 0)


def test_null_details_and_missing_fields_read_as_zero() -> None:
    usage = openai_chat.usage_from_fields(
        {"prompt_tokens": 12, "completion_tokens": 3, "prompt_tokens_details": None, "completion_tokens_details": None}
    )
    assert usage == Usage(input_tokens=12, output_tokens=3)
    meta = {"promptTokenCount": 8, "totalTokenCount": 8}  # a Gemini reply blocked before any candidate
    assert gemini.usage_from_fields(meta) == Usage(input_tokens=8)


def test_compatible_servers_top_level_cache_hits() -> None:
    usage = openai_chat.usage_from_fields(
        {
            "prompt_tokens": 1000,
            "completion_tokens": 20,
            "prompt_cache_hit_tokens": 768,
            "prompt_cache_miss_tokens": 232,
        }
    )
    assert (usage.input_tokens, usage.cache_read_tokens) == (232, 768)


def test_reasoning_never_exceeds_output() -> None:
    usage = openai_responses.usage_from_fields(
        {"input_tokens": 5, "output_tokens": 10, "output_tokens_details": {"reasoning_tokens": 99}}
    )
    assert usage.reasoning_tokens == 10


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("openai_chat_body.json", WireFormat.OPENAI_CHAT),
        ("openai_responses_body.json", WireFormat.OPENAI_RESPONSES),
        ("anthropic_body.json", WireFormat.ANTHROPIC),
        ("gemini_body.json", WireFormat.GEMINI),
    ],
)
def test_usage_from_body_dispatches_by_detected_or_given_format(
    name: str, fmt: WireFormat, load: Callable[[str], bytes]
) -> None:
    data = body(load, name)
    assert usage_from_body(data) == usage_from_body(data, fmt) == usage_from_body(data, fmt.value)


@pytest.mark.parametrize(
    "reader",
    [openai_chat.usage_from_body, openai_responses.usage_from_body, anthropic.usage_from_body, gemini.usage_from_body],
)
def test_a_body_without_usage_is_an_error(reader: Callable[[dict], Usage]) -> None:
    with pytest.raises(UsageFormatError, match="usage"):
        reader({"id": "x", "usage": None})


def test_usage_from_body_of_unknown_shape() -> None:
    with pytest.raises(UsageFormatError, match="unknown format: no usage fields found"):
        usage_from_body({"hello": "world"})
