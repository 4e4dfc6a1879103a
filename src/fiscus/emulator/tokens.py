"""Deterministic token counting: one token per four characters, rounded up — or per `chars_per_token`
characters for a request or model set to count otherwise (1: one token per character, as a real tokenizer
counts CJK text, base64 or hex; see `x-emulator-chars-per-token` and `EmulatorConfig.chars_per_token`).

Each provider module renders a request into one string (role markers, tool schemas, text), so a prefix
of the prompt is a prefix of that string and cached-token counts stay consistent with the totals.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import orjson

CHARS_PER_TOKEN = 4
_CHARS: ContextVar[int] = ContextVar("emulator_chars_per_token", default=CHARS_PER_TOKEN)
# Media is rendered as a fixed-size placeholder, so an image costs a stable ~85 tokens whatever its bytes.
MEDIA_TOKENS = 85


def count_text(text: str) -> int:
    """Tokens in `text`: ceil(len / 4); empty text is zero tokens."""
    return tokens_in(len(text))


def tokens_in(chars: int) -> int:
    """Tokens in the first `chars` rendered characters (the count of a prefix, without slicing it)."""
    return -(-chars // _CHARS.get())


def chars_for(tokens: int) -> int:
    """How many rendered characters make up the first `tokens` tokens."""
    return tokens * _CHARS.get()


def set_chars_per_token(chars: int) -> None:
    """Count this request (the current task from here on) at `chars` characters a token."""
    _CHARS.set(chars)


@contextmanager
def counting(chars: int) -> Iterator[None]:
    """Count at `chars` characters a token inside the block."""
    token = _CHARS.set(chars)
    try:
        yield
    finally:
        _CHARS.reset(token)


def media_placeholder(payload: Any) -> str:
    """A fixed-length stand-in for an image or file part; distinct media give distinct placeholders."""
    digest = hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    head = f"<media:{digest}>"
    return head.ljust(MEDIA_TOKENS * CHARS_PER_TOKEN, ".")


def canonical(value: Any) -> str:
    """Stable JSON text for schemas and other structured prompt parts."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
