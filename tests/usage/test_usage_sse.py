"""The SSE parser: WHATWG line rules, and the same events however the bytes are split."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fiscus.usage.sse import SSEEvent, SSEParser, parse_sse

DATA = Path(__file__).parent / "data"

STREAMS = ["openai_chat_stream.sse", "openai_responses_stream.sse", "anthropic_stream.sse", "gemini_stream.sse"]


def feed_in_pieces(data: bytes, cuts: list[int]) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        events += parser.feed(data[start:cut])
        start = cut
    return events + parser.close()


def test_fields_comments_and_multiline_data() -> None:
    raw = (
        b": keep-alive comment\n"
        b"event: message_start\n"
        b"id: 7\n"
        b"retry: 1000\n"
        b'data: {"a":\n'
        b"data:1}\n"
        b"\n"
        b"data\n"
        b"\n"
        b"event: no-data-is-not-dispatched\n"
        b"\n"
        b"data: [DONE]\n\n"
    )
    events = parse_sse(raw)
    assert events[0] == SSEEvent('{"a":\n1}', "message_start", "7")
    assert events[1] == SSEEvent("", None, "7")  # `data` without a colon is an empty data line; id persists
    assert events[2].is_done and events[2].event is None
    assert len(events) == 3


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending(newline: bytes) -> None:
    raw = newline.join([b"event: a", b"data: one", b"", b"data: two", b"data: three", b"", b""])
    assert parse_sse(raw) == [SSEEvent("one", "a"), SSEEvent("two\nthree")]


def test_bom_and_unterminated_last_event() -> None:
    assert parse_sse(b'\xef\xbb\xbfdata: {"x":1}') == [SSEEvent('{"x":1}')]


def test_crlf_split_between_cr_and_lf_is_one_line_end() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\n\r") == [SSEEvent("a")]  # the LF finishes the CRLF; the CR ends the blank line
    assert parser.feed(b"\ndata: b\r\n\r\n") == [SSEEvent("b")]


def test_multibyte_character_split_across_chunks() -> None:
    raw = "data: 21% — fünf €\n\n".encode()
    cut = raw.index("€".encode()) + 1
    assert feed_in_pieces(raw, [cut]) == [SSEEvent("21% — fünf €")]


@pytest.mark.parametrize("name", STREAMS)
def test_split_at_every_byte_boundary(name: str, load: Callable[[str], bytes]) -> None:
    raw = load(name)
    whole = parse_sse(raw)
    assert len(whole) >= 3
    for cut in range(len(raw) + 1):
        assert feed_in_pieces(raw, [cut]) == whole, f"split at byte {cut}"
    assert feed_in_pieces(raw, list(range(len(raw)))) == whole  # one byte at a time


_RAW = {name: (DATA / name).read_bytes() for name in STREAMS}


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=40), which=st.sampled_from(STREAMS))
def test_any_chunking_gives_the_same_events(cuts: list[int], which: str) -> None:
    raw = _RAW[which]
    assert feed_in_pieces(raw, [c % (len(raw) + 1) for c in cuts]) == parse_sse(raw)
