"""Prompt-cache placement for Anthropic Messages requests (OpenAI and Gemini cache repeated prefixes by
themselves; Anthropic caches only up to the `cache_control` breakpoints a request sets, four at most).

`CachePlacer.place` sets up to four breakpoints on a copy of a request that sets none:
1. after the tools, when a system prompt follows them (a system prompt that changes keeps its tools cached);
2. after the system prompt (or the tools): the stable prefix every call of an agent shares;
3. after the last stable turn: where this conversation's previous call ended, which that call wrote, so this one
   reads it back however many blocks the newest turn added (the provider looks back only 20 blocks);
4. after the last message: the growing history, written now for the next turn to read — unless the next turn,
   grown as much as this one, will be over the task class's context window, which then cuts into it.
A breakpoint is placed only where it pays. Anthropic bills a cache write at 1.25 × the input price for the
five-minute lifetime (2 × for one hour) and a read at 0.1 ×, and caches nothing shorter than the model's minimum
(`cache_minimums`). So a prefix (or conversation) seen once is left alone — it may never come back; one seen
again gets the breakpoint, with the lifetime its measured reuse interval calls for: five minutes when it comes
back within them (one read repays the 0.25 × premium), one hour when it comes back less often but within the
hour (the 1 × premium is repaid by the second read, and each five-minute write would expire unread), none when
it comes back more rarely still. Longer lifetimes come first in a prompt, as the provider requires.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from fiscus.shaping.cache_minimums import anthropic_min_tokens
from fiscus.usage.estimate import CHARS_PER_TOKEN

CACHE_TTL_S = 300.0  # Anthropic's default (5 minute) cache lifetime, renewed by every read
LONG_TTL_S = 3600.0  # the one-hour lifetime, at 2 × the input price per write
MAX_BREAKPOINTS = 4
# A reuse interval this close to a lifetime misses it half the time: the next lifetime up is chosen below it.
_MARGIN = 0.9
_SMOOTHING = 0.5  # weight of the newest gap in the measured reuse interval
_UNMARKABLE = ("thinking", "redacted_thinking")  # blocks the API refuses a cache_control on


@dataclass(slots=True)
class _Seen:
    last: float  # when last sent
    interval: float | None  # smoothed gap between sendings
    messages: int  # for a conversation: how many messages its last call had
    size: int = 0  # for a conversation: its last call's prompt, in characters


@dataclass(frozen=True, slots=True)
class _Mark:
    where: str  # "tools", "system" or "message"
    index: int  # the message's index (for "message")
    ttl: str  # "5m" or "1h"


class CachePlacer:
    def __init__(
        self,
        *,
        ttl_s: float = CACHE_TTL_S,
        min_tokens: int | None = None,
        max_prefixes: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.min_tokens = min_tokens  # None: each model's documented minimum
        self.max_prefixes = max_prefixes
        self._clock = clock
        self._seen: OrderedDict[int, _Seen] = OrderedDict()  # prefix or conversation hash (oldest first)
        self._lock = threading.Lock()  # one placer serves every thread of a wrapped client
        self.placed = 0
        self.long_lived = 0  # placements with a one-hour lifetime

    def place(self, body: Mapping[str, Any], *, window_tokens: int | None = None) -> dict[str, Any] | None:
        """A copy of `body` with cache breakpoints where they pay, or None to send it as is. `window_tokens`: the
        context window the call's task class keeps to (`context:`), which decides whether the growing history
        can be read back."""
        system, tools = body.get("system") or None, body.get("tools") or None
        messages = body.get("messages")
        if system is not None and not (isinstance(system, str) or _ends_in_mapping(system)):
            return None  # a shape the provider will refuse anyway
        if tools is not None and not _ends_in_mapping(tools):
            return None
        if not isinstance(messages, list) or not all(isinstance(m, Mapping) for m in messages):
            return None
        try:
            prefix = orjson.dumps([tools, system])
            first = orjson.dumps(messages[0]) if messages else b""
        except TypeError:  # not plain JSON data (an SDK object): leave it alone
            return None
        if "cache_control" in body or b'"cache_control"' in prefix or _has_cache_control(messages):
            return None  # the caller places its own breakpoints (or asks for automatic caching)
        least = (self.min_tokens or anthropic_min_tokens(str(body.get("model", "")))) * CHARS_PER_TOKEN
        marks = self._marks(prefix, first, system, tools, messages, least, window_tokens)
        if not marks:
            return None
        return _marked(body, marks)

    def _marks(
        self,
        prefix: bytes,
        first: bytes,
        system: Any,
        tools: Any,
        messages: list[Any],
        least: int,
        window_tokens: int | None = None,
    ) -> list[_Mark]:
        now = self._clock()
        has_prefix = system is not None or tools is not None
        sizes = _running_sizes(len(prefix), messages) if first else []
        with self._lock:
            prefix_ttl = self._sighting(hash(prefix), now, 0) if has_prefix and len(prefix) >= least else None
            conversation = self._conversation(prefix + first, now, len(messages), sizes[-1]) if first else None
        marks: list[_Mark] = []
        if prefix_ttl is not None:
            if tools is not None and system is not None:
                marks.append(_Mark("tools", 0, prefix_ttl))
            marks.append(_Mark("system" if system is not None else "tools", 0, prefix_ttl))
        if conversation is not None:
            ttl, previous, previous_size = conversation
            ttl = _no_longer(ttl, marks)
            stable = {previous - 1}
            if not _outgrows(sizes[-1], previous_size, window_tokens):
                stable.add(len(messages) - 1)
            for index in sorted(stable):
                if 0 <= index < len(messages) and sizes[index] >= least and _markable(messages[index]):
                    marks.append(_Mark("message", index, ttl))
        marks = marks[-MAX_BREAKPOINTS:]
        if marks:
            with self._lock:
                self.placed += 1
                self.long_lived += any(mark.ttl == "1h" for mark in marks)
        return marks

    def _conversation(self, key: bytes, now: float, messages: int, size: int) -> tuple[str, int, int] | None:
        """(lifetime, messages and size of its previous call) when this conversation goes on and a breakpoint
        pays."""
        seen = self._seen.get(hash(key) ^ 1)
        previous, previous_size = (seen.messages, seen.size) if seen is not None else (0, 0)
        ttl = self._sighting(hash(key) ^ 1, now, messages, size)
        if ttl is None or previous > messages:
            return None  # first call, too rare to pay, or a shorter replay of an earlier call
        return ttl, previous, previous_size

    def _sighting(self, key: int, now: float, messages: int, size: int = 0) -> str | None:
        """Record a sending of `key`; the lifetime a breakpoint for it should have, or None when none pays."""
        seen = self._seen.pop(key, None)
        if seen is None:
            self._seen[key] = _Seen(now, None, messages, size)
            if len(self._seen) > self.max_prefixes:
                self._seen.popitem(last=False)
            return None
        gap = now - seen.last
        interval = gap if seen.interval is None else _SMOOTHING * gap + (1 - _SMOOTHING) * seen.interval
        self._seen[key] = _Seen(now, interval, messages, size)
        if gap > LONG_TTL_S:
            return None  # even an hour's cache would have lapsed
        if interval <= self.ttl_s * _MARGIN and gap <= self.ttl_s:
            return "5m"
        return "1h" if interval <= LONG_TTL_S * _MARGIN else None


def _outgrows(size: int, previous_size: int, window_tokens: int | None) -> bool:
    """Whether the conversation's next call, grown as much as this one did, will be over its context window: the
    window then cuts into what this call sends whole (its latest tool result becomes an older one, shortened), so
    the prefix through this call's last message never comes back and writing it would pay for nothing. (The
    breakpoint after the last stable turn stays: a shortened result is shortened the same way every call.)"""
    if window_tokens is None:
        return False
    growth = max(size - previous_size, 0)
    return size + growth > window_tokens * CHARS_PER_TOKEN


def _no_longer(ttl: str, marks: list[_Mark]) -> str:
    """A later breakpoint may not outlive an earlier one (the API wants one-hour entries first)."""
    return "5m" if any(mark.ttl == "5m" for mark in marks) else ttl


def _running_sizes(start: int, messages: list[Any]) -> list[int]:
    """Characters of the prompt up to the end of each message (a cheap bound for the cacheable minimum)."""
    sizes, total = [], start
    for message in messages:
        total += len(orjson.dumps(message))
        sizes.append(total)
    return sizes


def _control(ttl: str) -> dict[str, str]:
    return {"type": "ephemeral"} if ttl == "5m" else {"type": "ephemeral", "ttl": ttl}


def _marked(body: Mapping[str, Any], marks: list[_Mark]) -> dict[str, Any]:
    placed = dict(body)
    messages = list(body["messages"])
    for mark in marks:
        control = _control(mark.ttl)
        if mark.where == "tools":
            tools = placed["tools"]
            placed["tools"] = [*tools[:-1], {**tools[-1], "cache_control": control}]
        elif mark.where == "system":
            placed["system"] = _marked_system(placed["system"], control)
        else:
            messages[mark.index] = _marked_message(messages[mark.index], control)
    if any(mark.where == "message" for mark in marks):
        placed["messages"] = messages
    return placed


def _marked_system(system: str | list[Any], control: dict[str, str]) -> list[Any]:
    if isinstance(system, str):
        return [{"type": "text", "text": system, "cache_control": control}]
    return [*system[:-1], {**system[-1], "cache_control": control}]


def _markable(message: Mapping[str, Any]) -> bool:
    content = message.get("content")
    if isinstance(content, str):
        return bool(content)
    return isinstance(content, list) and _last_markable(content) is not None


def _last_markable(blocks: list[Any]) -> int | None:
    for i in range(len(blocks) - 1, -1, -1):
        block = blocks[i]
        if isinstance(block, Mapping) and block.get("type") not in _UNMARKABLE and block.get("text", "x") != "":
            return i
    return None


def _marked_message(message: Mapping[str, Any], control: dict[str, str]) -> dict[str, Any]:
    content = message["content"]
    if isinstance(content, str):
        return {**message, "content": [{"type": "text", "text": content, "cache_control": control}]}
    at = _last_markable(content)
    assert at is not None  # checked by _markable
    blocks = list(content)
    blocks[at] = {**blocks[at], "cache_control": control}
    return {**message, "content": blocks}


def _ends_in_mapping(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[-1], Mapping)


def _has_cache_control(messages: list[Any]) -> bool:
    for message in messages:
        content = message.get("content")
        if isinstance(content, list) and any(isinstance(b, Mapping) and "cache_control" in b for b in content):
            return True
    return False


def stable_tools(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """For providers that cache repeated prefixes by themselves (OpenAI, Gemini): a copy of `body` whose tool
    definitions are written with their keys in one order, so the same tools always give the same prompt prefix
    whatever order a client's objects happened to hold; None when they already are (or there are none)."""
    tools = body.get("tools")
    if not isinstance(tools, list) or not tools:
        return None
    try:
        sorted_text = orjson.dumps(tools, option=orjson.OPT_SORT_KEYS)
        if sorted_text == orjson.dumps(tools):
            return None
    except TypeError:
        return None
    return {**body, "tools": orjson.loads(sorted_text)}
