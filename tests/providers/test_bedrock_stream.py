"""Bedrock's streamed Claude answers: AWS event-stream frames, read as Anthropic's SSE by the provider kind, relayed
and priced by the gateway as Bedrock bills them."""

from __future__ import annotations

import base64
import random

import orjson
import pytest
from botocore.eventstream import EventStreamBuffer

from fiscus.config import ProviderConfig
from fiscus.providers import Upstream, UpstreamRequest
from fiscus.providers.aws_eventstream import Decoder, EventStreamError, encode
from fiscus.providers.bedrock_stream import BedrockMessagesStream
from fiscus.usage import StreamUsageTracker, WireFormat

from .conftest import KEYS, FakeTime

MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
CHUNK = {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}


def _chunk(event: dict[str, object]) -> bytes:
    return encode(CHUNK, orjson.dumps({"bytes": base64.b64encode(orjson.dumps(event)).decode()}))


def test_frames_read_by_botocore_and_by_the_decoder_split_anywhere() -> None:
    frames = _chunk({"type": "message_start"}) + encode({":message-type": "event"}, b"x" * 300)
    parsed = EventStreamBuffer()
    parsed.add_data(frames)
    read = list(parsed)
    assert [m.headers[":message-type"] for m in read] == ["event", "event"] and read[1].payload == b"x" * 300
    for cut in range(len(frames) + 1):
        decoder = Decoder()
        got = decoder.feed(frames[:cut]) + decoder.feed(frames[cut:])
        assert [(m.headers, m.payload) for m in got] == [(dict(m.headers), m.payload) for m in read]


def test_a_corrupt_frame_is_an_error_not_silence() -> None:
    frame = bytearray(_chunk({"type": "ping"}))
    frame[-6] ^= 0xFF
    with pytest.raises(EventStreamError, match="checksum"):
        Decoder().feed(bytes(frame))
    reader = BedrockMessagesStream()
    out = reader.feed(bytes(frame))
    assert out.startswith(b"event: error\n") and b"malformed event stream" in out


def test_exceptions_mid_stream_become_anthropic_error_events() -> None:
    reader = BedrockMessagesStream()
    out = reader.feed(_chunk({"type": "message_start", "message": {"usage": {"input_tokens": 5}}}))
    assert out.startswith(b"event: message_start\ndata: {")
    throttled = encode({":message-type": "exception", ":exception-type": "throttlingException"}, b'{"message":"slow"}')
    error = orjson.loads(reader.feed(throttled).split(b"data: ", 1)[1])
    assert error == {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}
    assert reader.feed(_chunk({"type": "ping"})[:10]) == b""
    assert b"ended mid-message" in reader.close()


async def test_the_bedrock_kind_streams_through_the_emulator(emulator: str, fake_time: FakeTime) -> None:
    config = {"bedrock": ProviderConfig(kind="bedrock", base_url=emulator, api_key_env="ANTHROPIC_KEY")}
    body = orjson.dumps(
        {"model": MODEL, "max_tokens": 64, "stream": True, "messages": [{"role": "user", "content": "hi there"}]}
    )
    up = Upstream(config, env=KEYS, clock=fake_time.clock, sleep=fake_time.sleep, rng=random.Random(1))
    request = UpstreamRequest("bedrock", "messages", MODEL, body, stream=True)
    async with up, up.stream(request) as answer:
        assert answer.ok and answer.headers["content-type"] == "text/event-stream"
        raw = b"".join([chunk async for chunk in answer])
    tracker = StreamUsageTracker(WireFormat.ANTHROPIC)
    tracker.feed_bytes(raw)
    usage = tracker.usage
    assert usage is not None
    events = [orjson.loads(line[6:]) for line in raw.split(b"\n") if line.startswith(b"data: ")]
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
    metrics = events[-1]["amazon-bedrock-invocationMetrics"]
    assert (usage.input_tokens, usage.output_tokens) == (metrics["inputTokenCount"], metrics["outputTokenCount"])
    assert usage.output_tokens > 0
