"""Token estimates: deterministic, offline, and a request count for each format."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from fiscus.errors import UsageFormatError
from fiscus.usage import WireFormat, count_message_tokens, count_request_tokens, estimate, estimate_tokens
from fiscus.usage.estimate import MEDIA_TOKENS, MESSAGE_OVERHEAD_TOKENS, REQUEST_OVERHEAD_TOKENS

SYSTEM = "You are a cost analyst. Answer in one sentence."  # 48 chars: 12 tokens
QUESTION = "Which agent spent the most this week?"  # 37 chars: 10 tokens
TOOL = {"name": "get_spend", "description": "Spend by agent", "input_schema": {"type": "object"}}


def test_heuristic_is_chars_over_four_rounded_up() -> None:
    assert estimate.estimator_name() == "chars/4"
    assert [estimate_tokens(t) for t in ("", "a", "abcd", "abcde")] == [0, 1, 1, 2]
    assert estimate_tokens(SYSTEM) == 12 and estimate_tokens(QUESTION) == 10


def test_a_corrupt_tiktoken_cache_file_falls_back_without_downloading(tmp_path: Path) -> None:
    # tiktoken would delete a file with the wrong hash and fetch it again; fiscus must not reach that point
    path = estimate._tiktoken_cache_path()
    assert path is not None and path.startswith(str(tmp_path))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Path(path).write_bytes(b"not an encoding")
    estimate._encoder.cache_clear()
    assert estimate.estimator_name() == "chars/4"
    assert Path(path).exists()  # left untouched: tiktoken was never asked
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() != estimate._ENCODING_SHA256


def test_disabled_tiktoken_cache_uses_the_heuristic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    estimate._encoder.cache_clear()
    assert estimate._tiktoken_cache_path() is None
    assert estimate_tokens(QUESTION) == 10


def test_chat_messages() -> None:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
    assert count_message_tokens(messages) == 2 * MESSAGE_OVERHEAD_TOKENS + 12 + 10
    body = {"model": "gpt-4o", "messages": messages}
    assert count_request_tokens(body, WireFormat.OPENAI_CHAT) == REQUEST_OVERHEAD_TOKENS + 30
    assert count_request_tokens(body, "openai") == REQUEST_OVERHEAD_TOKENS + 30


def test_content_parts_images_and_tools_count() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 40_000}}
    messages = [{"role": "user", "content": [{"type": "text", "text": QUESTION}, image]}]
    assert count_message_tokens(messages) == MESSAGE_OVERHEAD_TOKENS + 10 + MEDIA_TOKENS
    with_tools = count_request_tokens({"messages": messages, "tools": [TOOL]}, WireFormat.OPENAI_CHAT)
    assert with_tools > count_request_tokens({"messages": messages}, WireFormat.OPENAI_CHAT)


def test_anthropic_system_messages_and_tools() -> None:
    body = {
        "model": "claude-sonnet-4-5",
        "system": [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": QUESTION}],
    }
    assert count_request_tokens(body, "anthropic") == REQUEST_OVERHEAD_TOKENS + 12 + MESSAGE_OVERHEAD_TOKENS + 10
    assert count_request_tokens({**body, "tools": [TOOL]}, "anthropic") > count_request_tokens(body, "anthropic")


def test_responses_input_as_string_or_items() -> None:
    as_string = {"model": "gpt-5", "instructions": SYSTEM, "input": QUESTION}
    assert count_request_tokens(as_string, "openai") == REQUEST_OVERHEAD_TOKENS + 12 + 10
    as_items = {
        "instructions": SYSTEM,
        "input": [{"role": "user", "content": [{"type": "input_text", "text": QUESTION}]}],
    }
    assert count_request_tokens(as_items, WireFormat.OPENAI_RESPONSES) == REQUEST_OVERHEAD_TOKENS + 12 + 4 + 10


def test_gemini_contents_and_system_instruction() -> None:
    body = {
        "systemInstruction": {"parts": [{"text": SYSTEM}]},
        "contents": [{"role": "user", "parts": [{"text": QUESTION}, {"inlineData": {"mimeType": "image/png"}}]}],
    }
    expected = REQUEST_OVERHEAD_TOKENS + 12 + MESSAGE_OVERHEAD_TOKENS + 10 + MEDIA_TOKENS
    assert count_request_tokens(body, "google") == count_request_tokens(body, WireFormat.GEMINI) == expected


def test_tool_calls_and_results_are_counted() -> None:
    messages = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "spend: $412.50"},
    ]
    assert count_message_tokens(messages) > 2 * MESSAGE_OVERHEAD_TOKENS + estimate_tokens("spend: $412.50")


def test_unknown_provider() -> None:
    with pytest.raises(UsageFormatError, match="unknown provider or format 'cohere'"):
        count_request_tokens({"messages": []}, "cohere")
