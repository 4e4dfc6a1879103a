"""Anthropic Messages through the official SDK: usage, prompt caching by breakpoint and TTL, tools, errors."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest

from fiscus.emulator.config import ManualClock

LONG = "Contract clause text. " * 420  # ~2,300 tokens: above Sonnet 4.6's 2,048-token cacheable minimum
SHORT = "Contract clause text. " * 260  # ~1,430 tokens: cached by Sonnet 4.5 (1,024), not by Sonnet 4.6


def _system(ttl: str | None = None) -> list[dict[str, Any]]:
    control: dict[str, Any] = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    return [{"type": "text", "text": LONG, "cache_control": control}]


def _ask(claude: anthropic.Anthropic, question: str = "What does it say?", **extra: Any) -> Any:
    return claude.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=extra.pop("max_tokens", 256),
        messages=[{"role": "user", "content": question}],
        **extra,
    )


def test_message_body_and_usage(claude: anthropic.Anthropic) -> None:
    message = _ask(claude, "Hello Claude")
    assert message.model == "claude-sonnet-4-6" and message.role == "assistant"
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text" and message.content[0].text.startswith("Emulated reply to")
    usage = message.usage
    assert usage.output_tokens == 24 and usage.input_tokens > 0
    assert usage.cache_creation_input_tokens == 0 and usage.cache_read_input_tokens == 0
    assert usage.cache_creation is not None and usage.cache_creation.ephemeral_5m_input_tokens == 0


def test_max_tokens_stop_reason(claude: anthropic.Anthropic) -> None:
    message = _ask(claude, max_tokens=7)
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 7


def test_cache_write_then_read_then_expiry(claude: anthropic.Anthropic, clock: ManualClock) -> None:
    total = claude.messages.count_tokens(
        model="claude-sonnet-4-6", system=_system(), messages=[{"role": "user", "content": "What does it say?"}]
    ).input_tokens
    first = _ask(claude, system=_system()).usage
    assert first.cache_read_input_tokens == 0
    assert first.cache_creation_input_tokens > 2048
    assert first.cache_creation.ephemeral_5m_input_tokens == first.cache_creation_input_tokens
    assert first.input_tokens + first.cache_creation_input_tokens == total  # input excludes cache tokens

    clock.advance(120)
    second = _ask(claude, system=_system()).usage
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens == 0
    assert second.input_tokens == first.input_tokens

    clock.advance(301)  # the read above renewed the 5-minute TTL; now it lapses
    third = _ask(claude, system=_system()).usage
    assert third.cache_read_input_tokens == 0 and third.cache_creation_input_tokens > 0


@pytest.mark.parametrize(
    ("model", "text", "cached"),
    [
        ("claude-sonnet-4-5", SHORT, True),
        ("claude-sonnet-4-6", SHORT, False),
        ("claude-sonnet-4-6", LONG, True),
        ("claude-opus-4-6", LONG, False),  # Opus 4.6 caches from 4,096 tokens
        ("claude-haiku-4-5-20251001", LONG, False),
    ],
)
def test_cacheable_minimum_is_the_models_own(claude: anthropic.Anthropic, model: str, text: str, cached: bool) -> None:
    system = [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}]
    ask = {"model": model, "max_tokens": 16, "system": system, "messages": [{"role": "user", "content": "Hi"}]}
    first = claude.messages.create(**ask).usage
    second = claude.messages.create(**ask).usage
    assert (first.cache_creation_input_tokens > 0) is cached
    assert (second.cache_read_input_tokens == first.cache_creation_input_tokens > 0) is cached


def test_one_hour_ttl_bucket(claude: anthropic.Anthropic, clock: ManualClock) -> None:
    first = _ask(claude, system=_system("1h")).usage
    assert first.cache_creation.ephemeral_1h_input_tokens == first.cache_creation_input_tokens > 0
    assert first.cache_creation.ephemeral_5m_input_tokens == 0
    clock.advance(1800)
    assert _ask(claude, system=_system("1h")).usage.cache_read_input_tokens == first.cache_creation_input_tokens


def test_second_breakpoint_writes_only_the_new_segment(claude: anthropic.Anthropic) -> None:
    base = _ask(claude, system=_system()).usage.cache_creation_input_tokens
    messages = [
        {"role": "user", "content": [{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}]},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "And now?"},
    ]
    usage = claude.messages.create(model="claude-sonnet-4-6", max_tokens=64, system=_system(), messages=messages).usage
    assert usage.cache_read_input_tokens == base
    assert 0 < usage.cache_creation_input_tokens < base + 20


def test_top_level_cache_control_follows_the_conversation(claude: anthropic.Anthropic) -> None:
    turns: list[dict[str, Any]] = [{"role": "user", "content": LONG}]
    first = claude.messages.create(
        model="claude-sonnet-4-6", max_tokens=32, messages=turns, cache_control={"type": "ephemeral"}
    )
    turns += [{"role": "assistant", "content": first.content[0].text}, {"role": "user", "content": "More?"}]
    second = claude.messages.create(
        model="claude-sonnet-4-6", max_tokens=32, messages=turns, cache_control={"type": "ephemeral"}
    )
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens > 1024
    assert 0 < second.usage.cache_creation_input_tokens < 64


def test_prefix_below_minimum_is_not_cached(claude: anthropic.Anthropic) -> None:
    system = [{"type": "text", "text": "short", "cache_control": {"type": "ephemeral"}}]
    _ask(claude, system=system)
    usage = _ask(claude, system=system).usage
    assert usage.cache_creation_input_tokens == 0 and usage.cache_read_input_tokens == 0


def test_stream_helper_final_message_usage(claude: anthropic.Anthropic) -> None:
    _ask(claude, system=_system())  # warm the cache
    with claude.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=256,
        system=_system(),
        messages=[{"role": "user", "content": "What does it say?"}],
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and "message_stop" in kinds
    assert final.usage.output_tokens == 24
    assert final.usage.cache_read_input_tokens > 1024
    assert final.stop_reason == "end_turn"
    assert final.content[0].text.startswith("Emulated reply to")


def test_raw_stream_message_delta_usage_is_cumulative(claude: anthropic.Anthropic) -> None:
    events = list(
        claude.messages.create(
            model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    start = events[0]
    delta = next(e for e in events if e.type == "message_delta")
    assert start.type == "message_start" and start.message.usage.output_tokens == 1
    assert events[1].type == "content_block_start"
    assert delta.usage.output_tokens == 10 and delta.delta.stop_reason == "max_tokens"
    assert delta.usage.input_tokens == start.message.usage.input_tokens


async def test_async_stream_and_thinking(aclaude: anthropic.AsyncAnthropic) -> None:
    async with aclaude.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "ponder"}],
        extra_headers={"x-emulator-reasoning-tokens": "100"},
    ) as stream:
        final = await stream.get_final_message()
    assert [block.type for block in final.content] == ["thinking", "text"]
    assert final.usage.output_tokens == 124


def test_tool_use(claude: anthropic.Anthropic) -> None:
    tool = {
        "name": "get_stock",
        "description": "Price of a ticker",
        "input_schema": {"type": "object", "properties": {"ticker": {"type": "string"}}, "required": ["ticker"]},
    }
    message = claude.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=256,
        tools=[tool],
        tool_choice={"type": "tool", "name": "get_stock"},
        messages=[{"role": "user", "content": "price?"}],
    )
    block = message.content[0]
    assert message.stop_reason == "tool_use"
    assert block.type == "tool_use" and block.name == "get_stock" and block.input == {"ticker": "emulated"}
    with claude.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=256,
        tools=[tool],
        messages=[{"role": "user", "content": "price? [[tool:get_stock]]"}],
    ) as stream:
        streamed = stream.get_final_message()
    assert streamed.content[0].input == {"ticker": "emulated"}


def test_auth_and_version_errors_in_anthropic_format(emulator_url: str) -> None:
    missing = httpx.post(f"{emulator_url}/v1/messages", json={}, headers={"anthropic-version": "2023-06-01"})
    assert missing.status_code == 401
    assert missing.json()["type"] == "error"
    assert missing.json()["error"]["type"] == "authentication_error"
    no_version = httpx.post(f"{emulator_url}/v1/messages", json={}, headers={"x-api-key": "k"})
    assert no_version.status_code == 400 and no_version.json()["error"]["type"] == "invalid_request_error"


def test_missing_max_tokens_is_invalid_request(emulator_url: str) -> None:
    response = httpx.post(
        f"{emulator_url}/v1/messages",
        json={"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == {"type": "invalid_request_error", "message": "max_tokens: Field required"}
    assert response.json()["request_id"] == response.headers["request-id"]


@pytest.mark.parametrize(
    ("status", "error_type", "exception"),
    [
        (529, "overloaded_error", anthropic.OverloadedError),
        (500, "api_error", anthropic.InternalServerError),
        (429, "rate_limit_error", anthropic.RateLimitError),
    ],
)
def test_injected_errors(claude: anthropic.Anthropic, status: int, error_type: str, exception: type) -> None:
    with pytest.raises(exception) as caught:
        _ask(claude, extra_headers={"x-emulator-error": str(status)})
    assert caught.value.status_code == status
    assert caught.value.body["error"]["type"] == error_type
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "1"
