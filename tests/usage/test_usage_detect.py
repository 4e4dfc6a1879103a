"""Reading saved files: which format, body or stream, and clear errors for anything else."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

import fiscus.usage
from fiscus.errors import UsageFormatError
from fiscus.usage import Usage, WireFormat, read_usage

FILES = {
    "openai_chat_body.json": (WireFormat.OPENAI_CHAT, "openai", "o4-mini-2025-04-16", False),
    "openai_chat_stream.sse": (WireFormat.OPENAI_CHAT, "openai", "gpt-4o-2024-08-06", True),
    "openai_responses_body.json": (WireFormat.OPENAI_RESPONSES, "openai", "gpt-5-mini-2025-08-07", False),
    "openai_responses_stream.sse": (WireFormat.OPENAI_RESPONSES, "openai", "o4-mini-2025-04-16", True),
    "anthropic_body.json": (WireFormat.ANTHROPIC, "anthropic", "claude-sonnet-4-5-20250929", False),
    "anthropic_stream.sse": (WireFormat.ANTHROPIC, "anthropic", "claude-sonnet-4-5-20250929", True),
    "gemini_body.json": (WireFormat.GEMINI, "gemini", "gemini-2.5-flash", False),
    "gemini_stream.sse": (WireFormat.GEMINI, "gemini", "gemini-2.5-pro", True),
}


def test_public_names() -> None:
    assert sorted(fiscus.usage.__all__) == [
        "StreamUsageTracker",
        "Usage",
        "UsageReading",
        "WireFormat",
        "anthropic_cache_write_bound",
        "count_message_tokens",
        "count_request_tokens",
        "detect_object",
        "estimate_tokens",
        "read_usage",
        "usage_from_body",
    ]


@pytest.mark.parametrize("name", list(FILES))
def test_detects_format_model_and_streaming(name: str, load: Callable[[str], bytes]) -> None:
    fmt, provider, model, streamed = FILES[name]
    reading = read_usage(load(name))
    assert (reading.format, reading.provider, reading.model, reading.streamed) == (fmt, provider, model, streamed)
    assert not reading.usage.estimated
    assert read_usage(load(name), fmt) == reading
    assert read_usage(load(name), provider=provider) == reading


def test_sse_without_event_names_is_still_recognised(load: Callable[[str], bytes]) -> None:
    raw = b"\n".join(line for line in load("anthropic_stream.sse").split(b"\n") if not line.startswith(b"event:"))
    reading = read_usage(raw)
    assert reading.format is WireFormat.ANTHROPIC
    assert reading.usage == Usage(input_tokens=42, cache_write_5m_tokens=1536, output_tokens=187)


def test_gemini_json_array_stream(load: Callable[[str], bytes]) -> None:
    chunks = [json.loads(line[6:]) for line in load("gemini_stream.sse").split(b"\r\n") if line.startswith(b"data: ")]
    reading = read_usage(json.dumps(chunks).encode())
    assert reading.streamed and reading.format is WireFormat.GEMINI
    assert reading.usage == Usage(input_tokens=31, output_tokens=509, reasoning_tokens=480)


def test_truncated_saved_stream_reads_as_estimated(load: Callable[[str], bytes]) -> None:
    raw = load("openai_responses_stream.sse")
    reading = read_usage(raw[: raw.index(b"event: response.completed") + 40])  # torn inside the last event
    assert reading.usage.estimated and reading.usage.output_tokens > 0
    assert reading.model == "o4-mini-2025-04-16"


def test_provider_narrows_and_forces(load: Callable[[str], bytes]) -> None:
    with pytest.raises(UsageFormatError, match=r"provider openai does not match the response's format \(anthropic\)"):
        read_usage(load("anthropic_body.json"), provider="openai")
    # nothing in this body names its format; --provider anthropic makes it readable
    bare = b'{"usage": {"input_tokens": 7, "output_tokens": 3}, "model": "claude-haiku-4-5"}'
    assert read_usage(bare, provider="anthropic").usage == Usage(input_tokens=7, output_tokens=3)
    with pytest.raises(UsageFormatError, match="unknown provider 'cohere'"):
        read_usage(bare, provider="cohere")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a provider response: the file is empty"),
        (b"hello world", "not a provider response: expected JSON or an SSE stream"),
        (b'{"usage": {"prompt_tokens": 1', "not a provider response: malformed JSON"),
        (b'"just a string"', "not a provider response: expected JSON or an SSE stream"),
        (b"42", "not a provider response: expected JSON or an SSE stream"),
        (b'{"id": "x", "data": []}', "unknown format: no usage fields found"),
        (b": only a comment\n\n", "the SSE stream has no events"),
        (
            b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}',
            "the body is a provider error, not a response: Overloaded",
        ),
        (
            b'{"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED"}}',
            "the body is a provider error, not a response: Resource has been exhausted",
        ),
    ],
)
def test_errors_are_one_clear_line(data: bytes, message: str) -> None:
    with pytest.raises(UsageFormatError, match=message) as info:
        read_usage(data)
    assert "\n" not in str(info.value)
