"""Watching a streamed answer without changing it: the SDK's own `Stream` keeps its type and its chunks.

The stream's inner iterator is swapped for one that reads usage, text and tool calls as chunks pass, and
settles once — at the end, on an error, on `close()`, or when the stream is dropped unread — with usage
estimated (and flagged) if the stream stopped before the provider reported it.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from fiscus.errors import UsageFormatError
from fiscus.sdk.objects import _dump
from fiscus.usage import anthropic as anthropic_usage
from fiscus.usage import openai_chat, openai_responses
from fiscus.usage.estimate import estimate_tokens, estimator_name
from fiscus.usage.model import Usage, UsageDetail
from fiscus.usage.wire import WireFormat

_RESPONSES_DONE = frozenset({"response.completed", "response.incomplete", "response.failed"})


class Observer:
    """Reads one stream's chunks. `see(chunk)` says whether the caller should get the chunk."""

    def __init__(self, fmt: WireFormat, *, hide_usage_chunk: bool = False) -> None:
        self.fmt = fmt
        self.hide_usage_chunk = hide_usage_chunk
        self.usage: Usage | None = None
        self.text: list[str] = []
        self.tools: dict[int, list[str]] = {}  # index → [name, arguments...]
        self._anthropic_usage: dict[str, Any] | None = None
        self._malformed: str | None = None  # a usage report that could not be read: the call is estimated

    def _read(self, reader: Callable[[Any], Usage], fields: Any) -> None:
        try:
            self.usage = reader(fields)
        except UsageFormatError as exc:  # never break the caller's stream over a bad count
            self.usage, self._malformed = None, str(exc)

    def see(self, chunk: Any) -> bool:
        fmt = self.fmt
        if fmt is WireFormat.OPENAI_CHAT:
            usage = chunk.usage
            if usage is not None:
                self._read(openai_chat.usage_from_fields, _dump(usage))
            if not chunk.choices:
                return not (self.hide_usage_chunk and usage is not None)
            delta = chunk.choices[0].delta
            if delta.content:
                self.text.append(delta.content)
            for call in delta.tool_calls or ():
                parts = self.tools.setdefault(call.index, [""])
                if call.function is not None:
                    if call.function.name:
                        parts[0] = call.function.name
                    if call.function.arguments:
                        parts.append(call.function.arguments)
            return True
        kind = chunk.type
        if fmt is WireFormat.OPENAI_RESPONSES:
            if kind == "response.output_text.delta":
                self.text.append(chunk.delta)
            elif kind == "response.output_item.done" and chunk.item.type == "function_call":
                self.tools[len(self.tools)] = [chunk.item.name, chunk.item.arguments]
            elif kind in _RESPONSES_DONE and chunk.response.usage is not None:
                self._read(openai_responses.usage_from_fields, _dump(chunk.response.usage))
            return True
        if kind == "content_block_delta":
            delta = chunk.delta
            if delta.type == "text_delta":
                self.text.append(delta.text)
            elif delta.type == "input_json_delta":
                self.tools.setdefault(chunk.index, [""]).append(delta.partial_json)
        elif kind == "content_block_start" and chunk.content_block.type == "tool_use":
            self.tools[chunk.index] = [chunk.content_block.name]
        elif kind == "message_start":
            self._anthropic_usage = _dump(chunk.message.usage)
        elif kind == "message_delta" and chunk.usage is not None:
            merged = dict(self._anthropic_usage or {})
            anthropic_usage.merge_fields(merged, _dump(chunk.usage))  # a final 0 cache read keeps the start's
            self._read(anthropic_usage.usage_from_fields, merged)
        return True

    def output(self) -> tuple[str, tuple[tuple[str, Any], ...]]:
        calls = tuple((parts[0], "".join(parts[1:])) for _, parts in sorted(self.tools.items()))
        return "".join(self.text), calls

    def result(self, input_tokens: int) -> Usage:
        """The provider's usage, or an estimate flagged as such when the stream ended before it came."""
        if self.usage is not None:
            return self.usage
        text, calls = self.output()
        out = estimate_tokens(text) + sum(estimate_tokens(args) for _, args in calls)
        why = f"the provider's usage report was malformed ({self._malformed})" if self._malformed else None
        why = why or "the stream ended before the provider reported usage"
        counted = f"output counted from the streamed text ({estimator_name()})"
        known = None
        if self._anthropic_usage:  # message_start came: its input counts are the provider's own
            try:
                known = anthropic_usage.usage_from_fields(self._anthropic_usage)
            except UsageFormatError:
                known = None
        if known is not None:
            how = f"{why}: input as the stream's opening usage reported it, {counted}"
            return Usage(
                input_tokens=known.input_tokens,
                cache_read_tokens=known.cache_read_tokens,
                cache_write_5m_tokens=known.cache_write_5m_tokens,
                cache_write_1h_tokens=known.cache_write_1h_tokens,
                output_tokens=max(out, known.output_tokens),
                estimated=True,
                detail=UsageDetail(estimate=how),
            )
        how = f"{why}: input counted from the request ({estimator_name()}), {counted}"
        return Usage(input_tokens=input_tokens, output_tokens=out, estimated=True, detail=UsageDetail(estimate=how))


Finish = Callable[[Observer, BaseException | None], None]


def observe_sync(stream: Any, observer: Observer, finish: Finish) -> Any:
    """Patch an `openai.Stream` / `anthropic.Stream` in place; returns it."""
    inner = stream._iterator
    done = [False]

    def settle(error: BaseException | None) -> None:
        if not done[0]:
            done[0] = True
            finish(observer, error)

    def watched() -> Any:
        error: BaseException | None = None
        try:
            for item in inner:
                if observer.see(item):
                    yield item
        except GeneratorExit:
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            settle(error)

    iterator = watched()
    stream._iterator = iterator
    original_close = stream.close

    def close() -> None:
        iterator.close()
        settle(None)
        original_close()

    stream.close = close
    weakref.finalize(stream, settle, None)
    return stream


AsyncFinish = Callable[[Observer, BaseException | None], Awaitable[None]]


def observe_async(stream: Any, observer: Observer, finish: AsyncFinish, finish_sync: Finish) -> Any:
    """Patch an `AsyncStream` in place; dropped unread, it settles through the sync path."""
    inner = stream._iterator
    done = [False]

    async def settle(error: BaseException | None) -> None:
        if not done[0]:
            done[0] = True
            await finish(observer, error)

    def settle_sync(error: BaseException | None) -> None:
        if not done[0]:
            done[0] = True
            finish_sync(observer, error)

    async def watched() -> Any:
        error: BaseException | None = None
        try:
            async for item in inner:
                if observer.see(item):
                    yield item
        except GeneratorExit:  # closed early (by `close()` or the loop's finaliser): settle in `finally`
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            await settle(error)

    iterator = watched()
    stream._iterator = iterator
    original_close = stream.close

    async def close() -> None:
        await iterator.aclose()
        await settle(None)
        await original_close()

    stream.close = close
    weakref.finalize(stream, settle_sync, None)
    return stream
