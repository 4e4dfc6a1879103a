"""`StreamUsageTracker`: the one object the gateway and the SDK feed a streamed response through.

Give it the raw bytes as they pass (`feed_bytes`) or events already parsed (`feed_event`); at the end,
`finish()` gives the exact usage or, if the stream stopped before the provider counted, a flagged estimate.
It only watches: it never changes or holds back what it is fed.
"""

from __future__ import annotations

from fiscus.usage.anthropic import AnthropicStreamAccumulator
from fiscus.usage.bedrock import ConverseStreamAccumulator
from fiscus.usage.gemini import GeminiStreamAccumulator
from fiscus.usage.model import Usage
from fiscus.usage.openai_chat import ChatStreamAccumulator
from fiscus.usage.openai_responses import ResponsesStreamAccumulator
from fiscus.usage.sse import SSEParser
from fiscus.usage.stream import Event, StreamAccumulator, decode
from fiscus.usage.wire import WireFormat

ACCUMULATORS: dict[WireFormat, type[StreamAccumulator]] = {
    WireFormat.OPENAI_CHAT: ChatStreamAccumulator,
    WireFormat.OPENAI_RESPONSES: ResponsesStreamAccumulator,
    WireFormat.ANTHROPIC: AnthropicStreamAccumulator,
    WireFormat.GEMINI: GeminiStreamAccumulator,
    WireFormat.BEDROCK_CONVERSE: ConverseStreamAccumulator,
}


class StreamUsageTracker:
    """Usage of one streamed response in `format`, fed incrementally."""

    __slots__ = ("_closed", "_parser", "accumulator", "format")

    def __init__(self, format: WireFormat | str) -> None:
        self.format = WireFormat(format)
        self.accumulator = ACCUMULATORS[self.format]()
        self._parser = SSEParser()
        self._closed = False

    def feed_bytes(self, chunk: bytes) -> None:
        """Raw SSE bytes, split anywhere."""
        accumulator = self.accumulator
        for event in self._parser.feed(chunk):
            accumulator.feed_data(event.data, event.event)

    def feed_event(self, event: Event) -> None:
        """One parsed event: a chunk's JSON object (e.g. an SDK stream item's `model_dump()`)."""
        self.accumulator.feed(event)

    @property
    def usage(self) -> Usage | None:
        """The provider's exact usage once it has arrived, else None."""
        return self.accumulator.usage

    @property
    def model(self) -> str | None:
        return self.accumulator.model

    @property
    def text(self) -> str:
        return self.accumulator.text

    def finish(self, estimate_input_tokens: int | None = None) -> Usage:
        """End of stream: exact usage, or an estimate flagged `estimated=True` (see `StreamAccumulator.finish`)."""
        if not self._closed:
            self._closed = True
            # An event left without its blank line was cut mid-way unless its JSON is whole: drop a torn one.
            for event in self._parser.close():
                if decode(event.data) is not None:
                    self.accumulator.feed_data(event.data, event.event)
        return self.accumulator.finish(estimate_input_tokens)
