"""Prompt-cache emulation: an LRU of prefix hashes with per-entry TTL, and each provider's rules on top.

Anthropic caches the prefix up to each `cache_control` breakpoint (write on first sight, read later);
OpenAI and Gemini (implicitly, from 2.5) cache automatically in 128-token steps from the model's minimum
(`fiscus.shaping.cache_minimums`). Keys hash the rendered prompt text, so "same prefix" means the same text,
in the same order, for the same model.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from fiscus.emulator.tokens import chars_for, tokens_in

ANTHROPIC_TTL_S = {"5m": 300.0, "1h": 3600.0}
OPENAI_STEP_TOKENS = 128
LOOKBACK_BLOCKS = 20


class TtlLru:
    """Least-recently-used set of keys, each alive until its TTL runs out; a hit renews the TTL."""

    def __init__(self, capacity: int, clock: Callable[[], float]) -> None:
        self._capacity = capacity
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (expires_at, ttl_s)

    def hit(self, key: str) -> bool:
        entry = self._entries.get(key)
        if entry is None:
            return False
        now = self._clock()
        if entry[0] <= now:
            del self._entries[key]
            return False
        self._entries[key] = (now + entry[1], entry[1])
        self._entries.move_to_end(key)
        return True

    def put(self, key: str, ttl_s: float) -> None:
        old = self._entries.get(key)
        ttl_s = max(ttl_s, old[1]) if old else ttl_s  # a short write never shortens a longer entry
        self._entries[key] = (self._clock() + ttl_s, ttl_s)
        self._entries.move_to_end(key)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def _prefix_keys(scope: str, text: str, ends: list[int]) -> list[str]:
    """Hash of `text[:end]` for each ascending end, computed in one pass."""
    digest = hashlib.sha256(scope.encode() + b"\x00")
    keys: list[str] = []
    done = 0
    for end in ends:
        digest.update(text[done:end].encode())
        done = end
        keys.append(digest.copy().hexdigest())
    return keys


@dataclass(slots=True)
class Breakpoint:
    end: int  # rendered characters up to and including the marked block
    ttl: str  # "5m" or "1h"


@dataclass(slots=True)
class AnthropicCache:
    read: int = 0
    write_5m: int = 0
    write_1h: int = 0

    @property
    def write(self) -> int:
        return self.write_5m + self.write_1h


def anthropic_cache(
    lru: TtlLru, model: str, rendered: str, block_ends: list[int], breakpoints: list[Breakpoint], min_tokens: int
) -> AnthropicCache:
    """Read the longest cached prefix, found at a breakpoint or up to 20 block boundaries before one (as
    the API looks back); write every later breakpoint segment to its TTL bucket."""
    marks = sorted((bp for bp in breakpoints if tokens_in(bp.end) >= min_tokens), key=lambda bp: bp.end)
    if not marks:
        return AnthropicCache()
    ends = sorted({*block_ends, *(bp.end for bp in marks)})
    keys = dict(zip(ends, _prefix_keys(model, rendered, ends), strict=True))
    candidates: set[int] = set()
    for mark in marks:
        at = ends.index(mark.end)
        candidates.update(ends[max(0, at - LOOKBACK_BLOCKS) : at + 1])
    hit = next((end for end in sorted(candidates, reverse=True) if lru.hit(keys[end])), 0)
    result = AnthropicCache(read=tokens_in(hit))
    covered = result.read
    for mark in marks:
        if mark.end <= hit:
            continue
        tokens = tokens_in(mark.end)
        ttl = mark.ttl if mark.ttl in ANTHROPIC_TTL_S else "5m"
        if ttl == "1h":
            result.write_1h += tokens - covered
        else:
            result.write_5m += tokens - covered
        covered = tokens
        lru.put(keys[mark.end], ANTHROPIC_TTL_S[ttl])
    return result


def prefix_cached_tokens(
    lru: TtlLru, scope: str, rendered: str, prompt_tokens: int, min_tokens: int, ttl_s: float
) -> int:
    """Cached prompt tokens of an automatic prefix cache (OpenAI, Gemini's implicit cache): the longest stored
    128-token-step prefix, then store this prompt's steps."""
    if prompt_tokens < min_tokens:
        return 0
    steps = list(range(min_tokens, prompt_tokens + 1, OPENAI_STEP_TOKENS))
    keys = _prefix_keys(scope, rendered, [chars_for(step) for step in steps])
    cached = 0
    for step, key in zip(reversed(steps), reversed(keys), strict=True):
        if lru.hit(key):
            cached = step
            break
    for key in keys:
        lru.put(key, ttl_s)
    return cached
