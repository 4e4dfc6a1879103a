"""How each wire format lays out a conversation: where its turns are, which are system prompts and tool results,
how turns group (a tool call with its results), and how one turn's content is shortened. Used by `compress`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fiscus.shaping.shorten import Counter, fit_json, shorten_text
from fiscus.usage.estimate import CHARS_PER_TOKEN, count_message_tokens
from fiscus.usage.wire import WireFormat


class Shape:
    """One wire format's conversation layout. Every method returns new objects; none mutates its input."""

    key = "messages"
    fmt = WireFormat.OPENAI_CHAT

    def is_system(self, item: Any) -> bool:
        return isinstance(item, Mapping) and item.get("role") in ("system", "developer")

    def is_tool_result(self, item: Any) -> bool:
        return isinstance(item, Mapping) and item.get("role") in ("tool", "function")

    def opens_group(self, item: Any) -> bool:
        return (
            isinstance(item, Mapping)
            and item.get("role") == "assistant"
            and bool(item.get("tool_calls") or item.get("function_call"))
        )

    def continues_group(self, item: Any) -> bool:
        return self.is_tool_result(item)

    one_result_turn = False  # Anthropic and Gemini return all of a call turn's results in one turn

    def groups(self, items: list[Any], offset: int) -> list[list[int]]:
        """Indexes (from `offset`) of the conversation's groups, oldest first."""
        groups: list[list[int]] = []
        open_tool = False
        for i, item in enumerate(items, start=offset):
            if open_tool and self.continues_group(item):
                groups[-1].append(i)
                open_tool = not self.one_result_turn
                continue
            groups.append([i])
            open_tool = self.opens_group(item)
        return groups

    def marker(self, text: str) -> dict[str, Any]:
        return {"role": "user", "content": text}

    def shorten_results(self, item: Mapping[str, Any], max_tokens: int, count: Counter) -> dict[str, Any] | None:
        """The tool result `item` with each result cut to about `max_tokens`; None when none was longer."""
        content = _shorten_content(item.get("content"), max_tokens, count)
        return None if content is None else {**item, "content": content}

    def trim(self, item: Mapping[str, Any], max_tokens: int, count: Counter) -> dict[str, Any] | None:
        """`item` trimmed middle-out to about `max_tokens` in all (its longest text cut); None when it cannot be."""
        over = count_message_tokens([item]) - max_tokens
        content = _trim_content(item.get("content"), over, count)
        return None if content is None else {**item, "content": content}


class _Responses(Shape):
    key = "input"
    fmt = WireFormat.OPENAI_RESPONSES

    def is_tool_result(self, item: Any) -> bool:
        return isinstance(item, Mapping) and item.get("type") == "function_call_output"

    def opens_group(self, item: Any) -> bool:
        return isinstance(item, Mapping) and item.get("type") in ("function_call", "reasoning")

    def continues_group(self, item: Any) -> bool:
        return isinstance(item, Mapping) and item.get("type") in ("function_call", "function_call_output")

    def shorten_results(self, item: Mapping[str, Any], max_tokens: int, count: Counter) -> dict[str, Any] | None:
        output = _shorten_content(item.get("output"), max_tokens, count)
        return None if output is None else {**item, "output": output}

    def trim(self, item: Mapping[str, Any], max_tokens: int, count: Counter) -> dict[str, Any] | None:
        if self.is_tool_result(item):
            over = count_message_tokens([item]) - max_tokens
            output = _trim_content(item.get("output"), over, count)
            return None if output is None else {**item, "output": output}
        return super().trim(item, max_tokens, count)


class _Anthropic(Shape):
    fmt = WireFormat.ANTHROPIC
    one_result_turn = True

    def is_system(self, item: Any) -> bool:
        return False  # the system prompt is a field of its own

    def is_tool_result(self, item: Any) -> bool:
        return _has_block(item, "user", "tool_result")

    def opens_group(self, item: Any) -> bool:
        return _has_block(item, "assistant", "tool_use")

    def shorten_results(self, item: Mapping[str, Any], max_tokens: int, count: Counter) -> dict[str, Any] | None:
        changed = False
        blocks = []
        for block in item.get("content") or []:
            if isinstance(block, Mapping) and block.get("type") == "tool_result":
                content = _shorten_content(block.get("content"), max_tokens, count)
                if content is not None:
                    block, changed = {**block, "content": content}, True
            blocks.append(block)
        return {**item, "content": blocks} if changed else None


class _Gemini(Shape):
    key = "contents"
    fmt = WireFormat.GEMINI
    one_result_turn = True

    def is_system(self, item: Any) -> bool:
        return False  # systemInstruction is a field of its own

    def is_tool_result(self, item: Any) -> bool:
        return any(_response_of(part) is not None for part in _parts(item))

    def opens_group(self, item: Any) -> bool:
        return any(isinstance(p, Mapping) and ("functionCall" in p or "function_call" in p) for p in _parts(item))

    def marker(self, text: str) -> dict[str, Any]:
        return {"role": "user", "parts": [{"text": text}]}

    def shorten_results(self, item: Mapping[str, Any], max_tokens: int, count: Counter) -> dict[str, Any] | None:
        changed = False
        parts = []
        for part in _parts(item):
            found = _response_of(part)
            if found is not None:
                key, call = found
                response = call.get("response")
                fitted = fit_json(response, max_tokens * CHARS_PER_TOKEN)
                if fitted is not response:
                    part, changed = {**part, key: {**call, "response": fitted}}, True
            parts.append(part)
        return {**item, "parts": parts} if changed else None

    def trim(self, item: Mapping[str, Any], max_tokens: int, count: Counter) -> dict[str, Any] | None:
        if self.is_tool_result(item):
            return self.shorten_results(item, max_tokens, count)
        over = count_message_tokens([item]) - max_tokens
        parts = _trim_content(_parts(item), over, count)
        return None if parts is None else {**item, "parts": parts}


_SHAPES = {shape.fmt: shape for shape in (Shape(), _Responses(), _Anthropic(), _Gemini())}


def shape_of(fmt: WireFormat) -> Shape:
    return _SHAPES[fmt]


# --- content in any of the formats: a string, or a list of parts with text --------------------------------------


def _shorten_content(content: Any, max_tokens: int, count: Counter) -> Any | None:
    """Each text of `content` cut to about `max_tokens`; None when none was longer."""
    if isinstance(content, str):
        text, cut = shorten_text(content, max_tokens, count)
        return text if cut else None
    if not isinstance(content, list):
        return None
    changed = False
    parts = []
    for part in content:
        if isinstance(part, Mapping) and isinstance(part.get("text"), str):
            text, cut = shorten_text(part["text"], max_tokens, count)
            if cut:
                part, changed = {**part, "text": text}, True
        parts.append(part)
    return parts if changed else None


def _trim_content(content: Any, over: int, count: Counter) -> Any | None:
    """`content` with its longest text shortened by about `over` tokens, middle-out; None when it has none."""
    if over <= 0:
        return None
    if isinstance(content, str):
        text, cut = shorten_text(content, max(count(content) - over, 1), count)
        return text if cut else None
    if not isinstance(content, list):
        return None
    texts = [
        (count(part["text"]), i)
        for i, part in enumerate(content)
        if isinstance(part, Mapping) and isinstance(part.get("text"), str)
    ]
    nested = [
        (count(str(part.get("content"))), i)
        for i, part in enumerate(content)
        if isinstance(part, Mapping) and part.get("type") == "tool_result"
    ]
    if not texts and not nested:
        return None
    size, at = max(texts + nested)
    part = content[at]
    if "text" in part and isinstance(part.get("text"), str):
        text, cut = shorten_text(part["text"], max(size - over, 1), count)
        new_part = {**part, "text": text}
    else:
        inner = _trim_content(part.get("content"), over, count)
        cut, new_part = (1, {**part, "content": inner}) if inner is not None else (0, part)
    if not cut:
        return None
    return [*content[:at], new_part, *content[at + 1 :]]


def _has_block(item: Any, role: str, kind: str) -> bool:
    if not isinstance(item, Mapping) or item.get("role") != role:
        return False
    content = item.get("content")
    return isinstance(content, list) and any(isinstance(b, Mapping) and b.get("type") == kind for b in content)


def _parts(item: Any) -> list[Any]:
    parts = item.get("parts") if isinstance(item, Mapping) else None
    return parts if isinstance(parts, list) else []


def _response_of(part: Any) -> tuple[str, Mapping[str, Any]] | None:
    if not isinstance(part, Mapping):
        return None
    for key in ("functionResponse", "function_response"):
        call = part.get(key)
        if isinstance(call, Mapping):
            return key, call
    return None
