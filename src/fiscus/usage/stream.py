"""What every stream accumulator shares: lazy text collection and the estimate for a cut-off stream.

An accumulator is fed a stream's events one by one, either parsed (`feed(event)`) or as the raw `data` of an
SSE event (`feed_data(data, name)`). It decodes at once only the few events that carry usage or the model;
text-bearing events are kept as they came and decoded only if the text is asked for, which is rare: the
provider's own count is exact and the text is needed only when the stream stopped before it arrived.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from fiscus.errors import UsageFormatError
from fiscus.usage.estimate import estimate_tokens, estimator_name
from fiscus.usage.model import Usage, UsageDetail
from fiscus.usage.wire import WireFormat

Event = Mapping[str, Any]


def count(mapping: Any, key: str) -> int:
    """A token count: 0 when the field is absent or null; `UsageFormatError` when it is there but not a
    non-negative whole number (a string such as "74", a negative, a fraction): a malformed count must never be
    read as an exact 0."""
    if not isinstance(mapping, Mapping):
        return 0
    value = mapping.get(key)
    if type(value) is int and value >= 0:
        return value
    if value is None:
        return 0
    if isinstance(value, float) and value >= 0 and value.is_integer():
        return int(value)
    raise UsageFormatError(f"malformed usage field {key!r}: expected a non-negative whole number, got {value!r}")


def child(mapping: Any, key: str) -> Mapping[str, Any]:
    """A nested object, or an empty one when absent or null."""
    if isinstance(mapping, Mapping):
        value = mapping.get(key)
        if isinstance(value, Mapping):
            return value
    return {}


def decode(data: str | bytes) -> Event | None:
    """One event's JSON; None when it is not a JSON object (a torn last event, a keep-alive)."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


class StreamAccumulator(ABC):
    """Collects one streamed response. `usage` is the provider's exact count once it has arrived, else None;
    `finish()` returns it, or an estimate flagged `estimated=True` when the stream ended without it."""

    format: ClassVar[WireFormat]

    def __init__(self) -> None:
        self.model: str | None = None
        self._pending: list[str | Event] = []  # text-bearing events, raw or parsed, in arrival order
        self._text: list[str] = []
        self._reasoning: list[str] = []

    @abstractmethod
    def feed(self, event: Event) -> None:
        """One parsed event (a chunk's JSON object)."""

    def feed_data(self, data: str, name: str | None = None) -> None:
        """The `data` of one SSE event and its `event:` name; formats override this to decode lazily."""
        event = decode(data)
        if event is not None:
            self.feed(event)

    @property
    @abstractmethod
    def usage(self) -> Usage | None:
        """The provider's exact usage, once the stream has delivered it."""

    def partial_usage(self) -> Usage | None:
        """What the stream reported before its final count (e.g. Anthropic's `message_start`), if anything."""
        return None

    @abstractmethod
    def _collect(self, event: Event, text: list[str], reasoning: list[str]) -> None:
        """Append the output text and the reasoning text that one event carries."""

    def _drain(self) -> None:
        pending, self._pending = self._pending, []
        for item in pending:
            event = decode(item) if isinstance(item, str) else item
            if event is not None:
                self._collect(event, self._text, self._reasoning)

    @property
    def text(self) -> str:
        """The visible output received so far: text, refusals and tool-call arguments."""
        self._drain()
        return "".join(self._text)

    @property
    def reasoning_text(self) -> str:
        """Reasoning or thinking text received so far (often a summary: the billed reasoning may be longer)."""
        self._drain()
        return "".join(self._reasoning)

    def finish(self, estimate_input_tokens: int | None = None) -> Usage:
        """The exact usage, or an estimate from what arrived when the stream stopped early.

        The estimate counts the received text; input comes from a partial report if the stream gave one,
        else from `estimate_input_tokens` (the caller's count of the request). It is never zero output: a
        cut-off call still cost something, and zero would read as free. A malformed usage report is estimated
        the same way. The estimate's `detail.estimate` says what was counted and how.
        """
        why = "the stream ended before the provider reported usage"
        try:
            exact = self.usage
            if exact is not None:
                return exact
            partial = self.partial_usage()
        except UsageFormatError as exc:
            why, partial = f"the provider's usage report was malformed ({exc})", None
        reasoning = estimate_tokens(self.reasoning_text)
        output = max(estimate_tokens(self.text) + reasoning, partial.output_tokens if partial else 0, 1)
        reasoning = min(max(reasoning, partial.reasoning_tokens if partial else 0), output)
        counted = f"output counted from the streamed text ({estimator_name()})"
        if partial is not None and partial.total_input_tokens > 0:
            return Usage(
                input_tokens=partial.input_tokens,
                cache_read_tokens=partial.cache_read_tokens,
                cache_write_5m_tokens=partial.cache_write_5m_tokens,
                cache_write_1h_tokens=partial.cache_write_1h_tokens,
                output_tokens=output,
                reasoning_tokens=reasoning,
                estimated=True,
                detail=UsageDetail(estimate=f"{why}: input as the stream's opening usage reported it, {counted}"),
            )
        if estimate_input_tokens:
            source = f"input counted from the request ({estimator_name()})"
        else:
            source = "input unknown (the request was not at hand), counted as 0"
        return Usage(
            input_tokens=max(estimate_input_tokens or 0, 0),
            output_tokens=output,
            reasoning_tokens=reasoning,
            estimated=True,
            detail=UsageDetail(estimate=f"{why}: {source}, {counted}"),
        )
