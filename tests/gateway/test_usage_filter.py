"""The filter that hides the usage-only chunk fiscus asked for on a client's behalf: chunks carrying
`"usage":null` pass untouched, the usage-only event is dropped wherever the chunk boundaries fall."""

from __future__ import annotations

import pytest

from fiscus.gateway.relay import UsageChunkFilter

CONTENT = b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"usage"}}],"usage":null}\n\n'
SPACED = b'data: {"id": "c1", "choices": [{"index": 0, "delta": {}}], "usage" : null}\n\n'
USAGE = b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n'
DONE = b"data: [DONE]\n\n"
STREAM = CONTENT + SPACED + USAGE + DONE


@pytest.mark.parametrize("size", [1, 7, 64, len(STREAM)])
def test_usage_only_event_dropped_at_any_chunking(size: int) -> None:
    strip = UsageChunkFilter()
    out = b"".join(strip(STREAM[i : i + size]) for i in range(0, len(STREAM), size)) + strip.flush()
    assert out == CONTENT + SPACED + DONE


def test_chunks_with_null_usage_pass_unchanged() -> None:
    strip = UsageChunkFilter()
    assert strip(CONTENT) == CONTENT
    assert strip(SPACED + DONE) == SPACED + DONE


def test_usage_beside_choices_is_kept() -> None:
    both = b'data: {"choices":[{"index":0,"delta":{}}],"usage":{"total_tokens":5}}\n\n'
    assert UsageChunkFilter()(both) == both


def test_many_events_in_one_chunk_lose_only_the_usage_only_one() -> None:
    both = b'data: {"choices":[{"index":0,"delta":{}}],"usage":{"total_tokens":5}}\n\n'
    strip = UsageChunkFilter()
    assert strip(CONTENT * 5 + both + SPACED + USAGE + DONE) == CONTENT * 5 + both + SPACED + DONE
    assert strip(USAGE + CONTENT) == CONTENT
