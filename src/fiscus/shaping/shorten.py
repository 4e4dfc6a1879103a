"""Shortening one piece of content to about N tokens, keeping what a reader needs of it.

Text keeps its head and tail around a marker (middle-out: the start says what it is, the end how it ended).
JSON text stays JSON: long arrays keep their first and last items around a marker item, long strings are
shortened middle-out, and every key of an object is kept — so a tool result that was parseable still parses.
The marker wording is deliberate: whoever reads the transcript sees the cut, and the same input always gives the
same output (a request shortened the same way twice keeps its provider-cached prefix).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from fiscus.usage.estimate import CHARS_PER_TOKEN, estimate_tokens

Counter = Callable[[str], int]
_MIN_STRING_CHARS = 48  # a string shorter than this is not worth a marker


def shortened_marker(before: int, after: int) -> str:
    return f"[fiscus: shortened from {before} to {after} tokens]"


def items_marker(removed: int, total: int) -> str:
    return f"[fiscus: {removed} of {total} items removed]"


def shorten_text(text: str, max_tokens: int, count: Counter = estimate_tokens) -> tuple[str, int]:
    """`text` cut to about `max_tokens`, middle-out (two thirds head, one third tail); returns (text, tokens cut).
    JSON text (an object or array) is shortened structurally and stays parseable."""
    before = count(text)
    if before <= max_tokens:
        return text, 0
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        shortened = _shorten_json_text(text, max_tokens, count)
        if shortened is not None:
            return shortened, max(before - count(shortened), 0)
    keep_chars = max(int(len(text) * max_tokens / before), 0)
    head = text[: keep_chars * 2 // 3]
    tail = text[len(text) - keep_chars // 3 :] if keep_chars // 3 else ""
    after = count(head) + count(tail)
    marker = shortened_marker(before, after)
    new = f"{head}\n{marker}\n{tail}" if tail else f"{head}\n{marker}"
    return new, max(before - count(new), 0)


def _shorten_json_text(text: str, max_tokens: int, count: Counter) -> str | None:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict | list):
        return None
    budget = max(max_tokens * CHARS_PER_TOKEN, 2)
    fitted = orjson.dumps(fit_json(value, budget)).decode()
    return fitted if count(fitted) < count(text) else None


def fit_json(value: Any, budget: int) -> Any:
    """`value` with its long arrays and strings cut so that its JSON text is about `budget` characters."""
    size = len(orjson.dumps(value))
    if size <= budget:
        return value
    if isinstance(value, str):
        return _fit_string(value, budget)
    if isinstance(value, list):
        return _fit_list(value, budget)
    if isinstance(value, dict):
        return _fit_dict(value, budget)
    return value  # a number, bool or null cannot be shortened


def _fit_string(text: str, budget: int) -> str:
    keep = max(budget - 60, 0)  # room for the marker
    if len(text) < _MIN_STRING_CHARS or keep >= len(text):
        return text
    head, tail = text[: keep * 2 // 3], text[len(text) - keep // 3 :] if keep // 3 else ""
    before, after = -(-len(text) // CHARS_PER_TOKEN), -(-(len(head) + len(tail)) // CHARS_PER_TOKEN)
    return f"{head} {shortened_marker(before, after)} {tail}".rstrip()


def _fit_list(items: list[Any], budget: int) -> list[Any]:
    """The first and last items that fit (alternately, from both ends), a marker item in between."""
    room = budget - len(items_marker(len(items), len(items))) - 4
    head: list[Any] = []
    tail: list[Any] = []
    low, high = 0, len(items) - 1
    take_head = True
    while low <= high:
        item = items[low] if take_head else items[high]
        size = len(orjson.dumps(item)) + 1
        if size > room:
            break
        room -= size
        if take_head:
            head.append(item)
            low += 1
        else:
            tail.insert(0, item)
            high -= 1
        take_head = not take_head
    if not head and items:  # not even one item fits whole: keep the first, itself shortened
        head = [fit_json(items[0], max(budget // 2, 2))]
        low = 1
    removed = len(items) - len(head) - len(tail)
    return [*head, items_marker(removed, len(items)), *tail] if removed > 0 else [*head, *tail]


def _fit_dict(value: dict[str, Any], budget: int) -> dict[str, Any]:
    """Every key kept; the budget shared out so that small values stay whole and large ones share the rest."""
    sizes = {key: len(orjson.dumps(item)) for key, item in value.items()}
    room = max(budget - sum(len(key) + 4 for key in value), 0)
    shares: dict[str, int] = {}
    pending = sorted(value, key=lambda key: sizes[key])
    while pending:
        fair = room // len(pending)
        key = pending[0]
        if sizes[key] <= fair:
            shares[key] = sizes[key]
            room -= sizes[key]
            pending.pop(0)
            continue
        for key in pending:
            shares[key] = fair
        break
    return {key: fit_json(item, shares[key]) if sizes[key] > shares[key] else item for key, item in value.items()}
