"""Context windows: make a request fit a token target, keeping what the model needs most.

Pure functions over request bodies in four formats (OpenAI chat `messages`, Responses `input`, Anthropic
`system` + `messages`, Gemini `systemInstruction` + `contents`). Never cut unless the request is over its target:
the system prompt, the latest turn and the latest tool result are kept whole; then, in order, until it fits:
1. older tool results are shortened, the oldest first, one at a time (head and tail kept around a marker; a
   JSON result stays parseable, see `shorten`);
2. the oldest conversation groups are dropped, a marker message saying how many went; a group is an assistant
   tool call together with its results, so call/result pairs stay valid;
3. what is left is trimmed middle-out, the longest message first — the latest tool result and the latest turn
   only when nothing else is left, the system prompt never.
The input body is never mutated; `Compression` says what was removed. The same request always gives the same
result, so a conversation shortened the same way call after call keeps its provider-cached prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fiscus.shaping.conversation import Shape, shape_of
from fiscus.shaping.shorten import Counter, shorten_text
from fiscus.usage.estimate import count_message_tokens, count_request_tokens, estimate_tokens
from fiscus.usage.wire import WireFormat

TOOL_RESULT_TOKENS = 512  # what an older tool result is shortened to first
TRIM_FLOOR_TOKENS = 64  # a message is never trimmed below this


def dropped_marker(count: int) -> str:
    return f"[fiscus: {count} earlier messages removed to fit the context window]"


@dataclass(slots=True)
class Compression:
    """What fitting a request to its window removed (`tokens_cut` by the same estimate the budget uses)."""

    tokens_cut: int = 0
    tool_results_shortened: int = 0
    messages_dropped: int = 0
    messages_trimmed: int = 0

    def describe(self) -> str:
        """One line for the `x-fiscus-compressed` header: what was cut, by kind."""
        parts = [
            f"{n} {what if n == 1 else plural} {done}"
            for n, what, plural, done in (
                (self.tool_results_shortened, "tool result", "tool results", "shortened"),
                (self.messages_dropped, "message", "messages", "dropped"),
                (self.messages_trimmed, "message", "messages", "trimmed"),
            )
            if n
        ]
        return ", ".join(parts) or "nothing removed"


def compress(
    body: Mapping[str, Any],
    format: WireFormat | str,
    target_tokens: int,
    *,
    keep_last: int = 1,
    count: Counter = estimate_tokens,
) -> tuple[dict[str, Any], int]:
    """`body` reshaped to fit `target_tokens` of input where it can; returns (new body, tokens cut)."""
    new, compression = fit_window(body, format, target_tokens, keep_last=keep_last, count=count)
    return new, compression.tokens_cut


def fit_window(
    body: Mapping[str, Any],
    format: WireFormat | str,
    target_tokens: int,
    *,
    keep_last: int = 1,
    count: Counter = estimate_tokens,
) -> tuple[dict[str, Any], Compression]:
    """`body` reshaped to fit `target_tokens` of input where it can, and what was removed. The newest
    `keep_last` conversation groups (at least the latest turn) are never dropped."""
    fmt = WireFormat(format)
    before = count_request_tokens(body, fmt)
    new = dict(body)
    if before <= target_tokens:
        return new, Compression()
    shape = shape_of(fmt)
    items = new.get(shape.key)
    if isinstance(items, str):  # a Responses request whose input is one string: only a middle-out trim helps
        aim = max(count(items) - (before - target_tokens) - 24, TRIM_FLOOR_TOKENS)
        text, _ = shorten_text(items, aim, count)
        new[shape.key] = text
        return new, Compression(max(before - count_request_tokens(new, fmt), 0), messages_trimmed=1)
    if not isinstance(items, list) or not items:
        return new, Compression()
    window = _Window(shape, list(items), before, target_tokens, count)
    window.fit(max(keep_last, 1))
    new[shape.key] = window.items
    after = count_request_tokens(new, fmt)
    done = window.done
    return new, Compression(max(before - after, 0), done[0], done[1], done[2])


class _Window:
    """The conversation being fitted: its items, their sizes, and the running total."""

    def __init__(self, shape: Shape, items: list[Any], total: int, target: int, count: Counter) -> None:
        self.shape, self.items, self.total, self.target, self.count = shape, items, total, target, count
        self.sizes = [count_message_tokens([item]) for item in items]
        self.done = [0, 0, 0]  # tool results shortened, messages dropped, messages trimmed
        self.protected: set[int] = set()  # ids of the items kept whole as long as anything else can go

    def fits(self) -> bool:
        return self.total <= self.target

    def replace(self, index: int, item: Any) -> None:
        size = count_message_tokens([item])
        self.total += size - self.sizes[index]
        self.items[index], self.sizes[index] = item, size

    def fit(self, keep_last: int) -> None:
        shape, items = self.shape, self.items
        lead = 0
        while lead < len(items) and shape.is_system(items[lead]):
            lead += 1
        groups = shape.groups(items[lead:], lead)
        latest_result = next((g for g in reversed(groups) if any(shape.is_tool_result(items[i]) for i in g)), [])
        kept = {i for group in groups[-keep_last:] for i in group} | set(latest_result)
        self.protected = {id(items[i]) for i in kept}
        for index in range(lead, len(items)):  # 1. older tool results, the oldest first
            if self.fits():
                return
            if index not in kept and shape.is_tool_result(items[index]):
                shortened = shape.shorten_results(items[index], TOOL_RESULT_TOKENS, self.count)
                if shortened is not None:
                    self.replace(index, shortened)
                    self.done[0] += 1
        if not self.fits():  # 2. the oldest groups
            self._drop(lead, [g for g in groups if not kept.intersection(g)])
        if not self.fits():  # 3. middle-out, the longest first; the protected messages last
            self._trim(lead)

    def _drop(self, lead: int, droppable: list[list[int]]) -> None:
        dropped: list[int] = []
        total = self.total
        for group in droppable:  # oldest first; the marker message takes the place of what goes
            dropped += group
            total -= sum(self.sizes[i] for i in group)
            marker_size = count_message_tokens([self.shape.marker(dropped_marker(len(dropped)))])
            if total + marker_size <= self.target:
                break
        if not dropped:
            return
        gone = set(dropped)
        marker = self.shape.marker(dropped_marker(len(dropped)))
        keep = [i for i in range(len(self.items)) if i not in gone]
        head, tail = keep[:lead], keep[lead:]
        self.items = [self.items[i] for i in head] + [marker] + [self.items[i] for i in tail]
        self.sizes = [self.sizes[i] for i in head] + [count_message_tokens([marker])] + [self.sizes[i] for i in tail]
        self.total = total + self.sizes[lead]
        self.done[1] += len(dropped)

    def _trim(self, lead: int) -> None:
        order = sorted(
            range(lead, len(self.items)),
            key=lambda i: (id(self.items[i]) in self.protected, -self.sizes[i], i),
        )
        for index in order:
            if self.fits():
                return
            over = self.total - self.target
            aim = max(self.sizes[index] - over - 24, TRIM_FLOOR_TOKENS)  # 24: room for the marker
            if aim >= self.sizes[index]:
                continue
            trimmed = self.shape.trim(self.items[index], aim, self.count)
            if trimmed is not None:
                self.replace(index, trimmed)
                self.done[2] += 1
