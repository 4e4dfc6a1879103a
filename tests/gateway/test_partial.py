"""Partial answers parse as ordinary replies in each protocol, with the SDKs' own types, end as finished answers
(never as if cut at a cap) and carry the machine-readable `fiscus` marker."""

from __future__ import annotations

import orjson
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from fiscus.shaping.partial import (
    ANTHROPIC,
    BUDGET_EXHAUSTED,
    OPENAI_CHAT,
    OPENAI_RESPONSES,
    exhausted_text,
    partial_body,
    partial_events,
)

TEXT = exhausted_text("team growth monthly budget is spent")
MARKER = {"partial": True, "code": BUDGET_EXHAUSTED, "message": TEXT, "retry_after": None}


def _payloads(events: list[bytes]) -> list[dict]:
    out = []
    for frame in events:
        assert frame.endswith(b"\n\n")
        data = [line[6:] for line in frame.split(b"\n") if line.startswith(b"data: ")]
        assert len(data) == 1
        if data[0] != b"[DONE]":
            out.append(orjson.loads(data[0]))
    return out


def test_text_says_budget_exhausted() -> None:
    assert "budget" in TEXT and "exhausted" in TEXT and "team growth" in TEXT


def test_chat_body_and_stream() -> None:
    body = ChatCompletion.model_validate(partial_body(OPENAI_CHAT, model="gpt-4o", text=TEXT))
    assert body.choices[0].finish_reason == "stop"
    assert body.choices[0].message.content == TEXT
    assert body.model_extra["fiscus"] == MARKER
    events = partial_events(OPENAI_CHAT, model="gpt-4o", text=TEXT, include_usage=True)
    assert events[-1] == b"data: [DONE]\n\n"
    chunks = [ChatCompletionChunk.model_validate(p) for p in _payloads(events)]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].model_extra["fiscus"] == MARKER
    ending = [c for c in chunks if c.choices][-1]
    assert ending.choices[0].finish_reason == "stop" and ending.model_extra["fiscus"] == MARKER
    assert [c for c in chunks if "fiscus" in c.model_extra] == [ending, chunks[-1]]
    without = _payloads(partial_events(OPENAI_CHAT, model="gpt-4o", text=TEXT))
    assert all(p["choices"] for p in without) and without[-1]["fiscus"] == MARKER


def test_marker_code_message_and_retry_after() -> None:
    body = partial_body(ANTHROPIC, model="m", text=TEXT, code="breaker_open", message="breaker open", retry_after=30)
    assert body["fiscus"] == {"partial": True, "code": "breaker_open", "message": "breaker open", "retry_after": 30}
    last = _payloads(partial_events(OPENAI_RESPONSES, model="m", text=TEXT, code="loop_detected", retry_after=5))[-1]
    assert last["fiscus"] == {"partial": True, "code": "loop_detected", "message": TEXT, "retry_after": 5}


def test_responses_body_and_stream() -> None:
    body = Response.model_validate(partial_body(OPENAI_RESPONSES, model="gpt-4o", text=TEXT))
    assert body.status == "completed" and body.incomplete_details is None and body.output_text == TEXT
    assert body.output[0].status == "completed" and body.model_extra["fiscus"] == MARKER
    adapter = TypeAdapter(ResponseStreamEvent)
    events = [adapter.validate_python(p) for p in _payloads(partial_events(OPENAI_RESPONSES, model="m", text=TEXT))]
    assert events[-1].type == "response.completed"
    assert events[-1].response.status == "completed"
    assert events[-1].model_extra["fiscus"] == MARKER and events[-1].response.model_extra["fiscus"] == MARKER
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_anthropic_body_and_stream() -> None:
    body = Message.model_validate(partial_body(ANTHROPIC, model="claude-sonnet-4-5", text=TEXT))
    assert body.stop_reason == "end_turn" and body.content[0].text == TEXT
    assert body.model_extra["fiscus"] == MARKER
    adapter = TypeAdapter(RawMessageStreamEvent)
    events = [adapter.validate_python(p) for p in _payloads(partial_events(ANTHROPIC, model="m", text=TEXT))]
    assert events[0].type == "message_start" and events[-1].type == "message_stop"
    assert events[-2].delta.stop_reason == "end_turn"
    assert events[-2].model_extra["fiscus"] == MARKER and events[-1].model_extra["fiscus"] == MARKER


def test_unknown_protocol() -> None:
    with pytest.raises(ValueError, match="unknown protocol"):
        partial_body("gemini", model="m", text="x")
