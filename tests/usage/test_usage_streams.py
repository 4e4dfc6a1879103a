"""Streamed responses: exact usage when it arrives, however the bytes are split; a flagged estimate when not."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from fiscus.usage import StreamUsageTracker, Usage, WireFormat, estimate_tokens
from fiscus.usage.estimate import estimator_name
from fiscus.usage.sse import parse_sse

DATA = Path(__file__).parent / "data"
ESTIMATOR = estimator_name()


def counts(usage: Usage) -> Usage:
    """The counts alone, without the note on how an estimate was made."""
    return replace(usage, detail=None)


EXPECTED = {
    "openai_chat_stream.sse": (
        WireFormat.OPENAI_CHAT,
        "gpt-4o-2024-08-06",
        Usage(input_tokens=142, cache_read_tokens=1152, output_tokens=8),
        "The capital of France is Paris.",
    ),
    "openai_responses_stream.sse": (
        WireFormat.OPENAI_RESPONSES,
        "o4-mini-2025-04-16",
        Usage(input_tokens=300, cache_read_tokens=512, output_tokens=356, reasoning_tokens=256),
        "Use the 5-minute cache unless calls are more than five minutes apart.",
    ),
    "anthropic_stream.sse": (
        WireFormat.ANTHROPIC,
        "claude-sonnet-4-5-20250929",
        Usage(input_tokens=42, cache_write_5m_tokens=1536, output_tokens=187),
        "You have $412.50 left of the $2,000 monthly budget — about 21%.",
    ),
    "gemini_stream.sse": (
        WireFormat.GEMINI,
        "gemini-2.5-pro",
        Usage(input_tokens=31, output_tokens=509, reasoning_tokens=480),
        "Three agents account for 71% of this month's spend; the summariser alone for 44%.",
    ),
}
# Where each stream's usage arrives: cutting the stream just before this line loses it.
USAGE_MARKERS = {
    "openai_chat_stream.sse": b'data: {"id":"chatcmpl-BkX4a1c7Rr0TQd2mEw9nJbVxK3sP","object":"chat.completion.chunk","created":1750239170,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_07871e2ad8","choices":[],',  # noqa: E501
    "openai_responses_stream.sse": b"event: response.completed",
    "anthropic_stream.sse": b"event: message_delta",
    "gemini_stream.sse": b'"finishReason"',
}


def tracker_for(name: str, *chunks: bytes) -> StreamUsageTracker:
    tracker = StreamUsageTracker(EXPECTED[name][0])
    for chunk in chunks:
        tracker.feed_bytes(chunk)
    return tracker


@pytest.mark.parametrize("name", list(EXPECTED))
def test_whole_stream(name: str, load: Callable[[str], bytes]) -> None:
    _, model, usage, text = EXPECTED[name]
    tracker = tracker_for(name, load(name))
    assert tracker.usage == usage
    assert tracker.finish(estimate_input_tokens=999_999) == usage  # exact usage ignores any estimate
    assert tracker.model == model
    assert tracker.text == text


@pytest.mark.parametrize("name", list(EXPECTED))
def test_parsed_events_give_the_same_result(name: str, load: Callable[[str], bytes]) -> None:
    fmt, model, usage, text = EXPECTED[name]
    tracker = StreamUsageTracker(fmt.value)
    for event in parse_sse(load(name)):
        if not event.is_done:
            tracker.feed_event(json.loads(event.data))
    assert (tracker.finish(), tracker.model, tracker.text) == (usage, model, text)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_fed_one_byte_at_a_time(name: str, load: Callable[[str], bytes]) -> None:
    # every split point of the SSE layer is covered in test_usage_sse; here the tracker sees the worst case
    raw = load(name)
    _, model, usage, text = EXPECTED[name]
    tracker = tracker_for(name, *(raw[i : i + 1] for i in range(len(raw))))
    assert (tracker.finish(), tracker.model, tracker.text) == (usage, model, text)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_cut_off_at_every_byte(name: str, load: Callable[[str], bytes]) -> None:
    raw = load(name)
    usage = EXPECTED[name][2]
    arrives_at = raw.index(USAGE_MARKERS[name])
    for cut in range(len(raw) + 1):
        truncated = tracker_for(name, raw[:cut]).finish(estimate_input_tokens=500)
        assert truncated.output_tokens >= 1, f"cut at byte {cut}"
        if cut <= arrives_at:
            assert truncated.estimated, f"cut at byte {cut}"
        if not truncated.estimated:
            assert truncated == usage, f"cut at byte {cut}"


def cut_before_usage(name: str) -> bytes:
    raw = (DATA / name).read_bytes()
    marker = raw.index(USAGE_MARKERS[name])
    return raw[: raw.rindex(b"data:", 0, marker + 1) if name == "gemini_stream.sse" else marker]


def test_truncated_chat_stream_is_estimated_from_text_and_request() -> None:
    tracker = tracker_for("openai_chat_stream.sse", cut_before_usage("openai_chat_stream.sse"))
    assert tracker.usage is None
    usage = tracker.finish(estimate_input_tokens=1294)
    text = "The capital of France is Paris."
    assert counts(usage) == Usage(input_tokens=1294, output_tokens=estimate_tokens(text), estimated=True)
    assert usage.output_tokens == 8  # chars/4, rounded up
    assert usage.estimate_note == (
        f"the stream ended before the provider reported usage: input counted from the request ({ESTIMATOR}), "
        f"output counted from the streamed text ({ESTIMATOR})"
    )


def test_chat_stream_without_include_usage_is_estimated(load: Callable[[str], bytes]) -> None:
    raw = load("openai_chat_stream.sse").replace(USAGE_MARKERS["openai_chat_stream.sse"], b"data: ignored-")
    tracker = tracker_for("openai_chat_stream.sse", raw)
    usage = tracker.finish()
    assert usage.estimated and usage.input_tokens == 0 and usage.output_tokens == 8
    assert usage.estimate_note is not None and "input unknown (the request was not at hand)" in usage.estimate_note


def test_truncated_responses_stream_counts_reasoning_summary_as_reasoning() -> None:
    tracker = tracker_for("openai_responses_stream.sse", cut_before_usage("openai_responses_stream.sse"))
    summary = tracker.accumulator.reasoning_text
    assert summary.startswith("**Comparing caches**")
    usage = tracker.finish(estimate_input_tokens=812)
    assert usage.estimated and usage.input_tokens == 812
    assert usage.reasoning_tokens == estimate_tokens(summary)
    assert usage.output_tokens == estimate_tokens(tracker.text) + estimate_tokens(summary)


def test_truncated_anthropic_stream_keeps_message_start_input() -> None:
    tracker = tracker_for("anthropic_stream.sse", cut_before_usage("anthropic_stream.sse"))
    usage = tracker.finish(estimate_input_tokens=1)  # message_start's exact input wins over the estimate
    thinking = "The tenant's cap is monthly, so the remaining budget is what matters."
    assert counts(usage) == Usage(
        input_tokens=42,
        cache_write_5m_tokens=1536,
        output_tokens=estimate_tokens(EXPECTED["anthropic_stream.sse"][3]) + estimate_tokens(thinking),
        reasoning_tokens=estimate_tokens(thinking),
        estimated=True,
    )


def test_truncated_gemini_stream_uses_the_last_running_count() -> None:
    tracker = tracker_for("gemini_stream.sse", cut_before_usage("gemini_stream.sse"))
    assert tracker.usage is None
    # the second chunk's running count (17 candidates + 480 thoughts) beats an estimate of the text
    usage = tracker.finish()
    assert counts(usage) == Usage(input_tokens=31, output_tokens=497, reasoning_tokens=480, estimated=True)
    assert usage.estimate_note is not None and "input as the stream's opening usage reported it" in usage.estimate_note


def test_a_stream_cut_before_any_byte_is_never_zero() -> None:
    for fmt in WireFormat:
        usage = StreamUsageTracker(fmt).finish(estimate_input_tokens=120)
        assert counts(usage) == Usage(input_tokens=120, output_tokens=1, estimated=True)


def anthropic_events(*deltas: dict) -> StreamUsageTracker:
    tracker = StreamUsageTracker(WireFormat.ANTHROPIC)
    start = {"input_tokens": 100, "cache_read_input_tokens": 50, "cache_creation_input_tokens": 0, "output_tokens": 1}
    tracker.feed_event({"type": "message_start", "message": {"model": "claude-haiku-4-5", "usage": start}})
    for usage in deltas:
        tracker.feed_event({"type": "message_delta", "delta": {"stop_reason": None}, "usage": usage})
    return tracker


def test_anthropic_message_delta_is_cumulative_not_added() -> None:
    tracker = anthropic_events(
        {"output_tokens": 20},
        {"input_tokens": 100, "cache_read_input_tokens": 50, "output_tokens": 45},
    )
    assert tracker.usage == Usage(input_tokens=100, cache_read_tokens=50, output_tokens=45)


def test_anthropic_null_delta_fields_keep_message_start_values() -> None:
    tracker = anthropic_events(
        {"input_tokens": None, "cache_read_input_tokens": None, "cache_creation_input_tokens": None, "output_tokens": 9}
    )
    assert tracker.usage == Usage(input_tokens=100, cache_read_tokens=50, output_tokens=9)


def test_anthropic_latest_non_null_delta_value_wins() -> None:
    # server tools (web search) can grow the input during the turn; the final delta carries the total
    tracker = anthropic_events({"input_tokens": 2480, "output_tokens": 310})
    assert tracker.usage == Usage(input_tokens=2480, cache_read_tokens=50, output_tokens=310)


def test_responses_incomplete_and_failed_terminal_events() -> None:
    usage = {"input_tokens": 40, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 16}
    incomplete = StreamUsageTracker(WireFormat.OPENAI_RESPONSES)
    incomplete.feed_event({"type": "response.incomplete", "response": {"status": "incomplete", "usage": usage}})
    assert incomplete.usage == Usage(input_tokens=40, output_tokens=16)
    failed = StreamUsageTracker(WireFormat.OPENAI_RESPONSES)
    failed.feed_event({"type": "response.output_text.delta", "delta": "partial answer"})
    failed.feed_event({"type": "response.failed", "response": {"status": "failed", "usage": None}})
    assert failed.usage is None
    assert counts(failed.finish(estimate_input_tokens=40)) == Usage(input_tokens=40, output_tokens=4, estimated=True)


def test_gemini_thought_parts_are_reasoning() -> None:
    tracker = StreamUsageTracker(WireFormat.GEMINI)
    thought = {"text": "Compare the two weeks first, then rank agents.", "thought": True}
    tracker.feed_event({"candidates": [{"content": {"parts": [thought], "role": "model"}}], "modelVersion": "g"})
    tracker.feed_event({"candidates": [{"content": {"parts": [{"text": "Spend rose."}], "role": "model"}}]})
    assert tracker.text == "Spend rose."
    usage = tracker.finish()
    assert usage.reasoning_tokens == estimate_tokens(thought["text"]) == 12
    assert usage.output_tokens == 12 + estimate_tokens("Spend rose.")


def test_text_events_are_not_decoded_when_usage_arrives(
    load: Callable[[str], bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fiscus.usage import stream

    decoded: list[object] = []
    real = stream.decode
    monkeypatch.setattr(stream, "decode", lambda data: decoded.append(data) or real(data))
    tracker = tracker_for("anthropic_stream.sse", load("anthropic_stream.sse"))
    assert not tracker.finish().estimated
    assert decoded == []  # exact usage: the 11 content_block_delta events were never parsed
    assert tracker.text.startswith("You have")
    assert len(decoded) == 11
