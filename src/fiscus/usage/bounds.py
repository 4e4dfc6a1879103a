"""Hard upper bounds on a request's input tokens, whatever the provider's tokenizer — and what a door tells the
governor about a request's input (`input_fields`).

An estimate (characters / 4, or a tokenizer that is not the provider's) can be off several times over: a
provider counting one token per character of CJK text, base64, hex or dense code bills four times what
characters / 4 says. A bound cannot be: every token of a byte-level BPE tokenizer (OpenAI's, Anthropic's) or
of a SentencePiece tokenizer with byte fallback (Gemini's) covers at least one byte of the text, so the UTF-8
bytes of the text bound its tokens. Framing gets a fixed allowance per message and per request, tool
definitions another (providers wrap them in a prompt of their own); an image counts a fixed ceiling, other
media (audio, video, documents) up to the model's context window, which the engine caps every bound by.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from fiscus.usage.estimate import (
    MAPPING_TYPES,
    MESSAGE_OVERHEAD_TOKENS,
    REQUEST_OVERHEAD_TOKENS,
    _content_tokens,
    _json,
    _request_format,
    count_request_tokens,
    estimate_tokens,
)
from fiscus.usage.wire import WireFormat

REQUEST_FRAME = 8  # the request's own framing (OpenAI primes the reply with 3 tokens)
MESSAGE_FRAME = 4  # each message or part: separators (OpenAI: 3 a message); its keys' bytes count besides
TOOLS_FRAME = 1024  # the prompt a provider wraps tool definitions in (Anthropic's tool-use prompt is ~350)
IMAGE_TOKENS = 8192  # above any provider's count for one image (Anthropic ~1,600, OpenAI high detail ~1,500)
MEDIA_TOKENS = 1_000_000  # audio, video, documents: no bound from the request; the context window caps it
_IMAGE_TYPES = frozenset({"image", "image_url", "input_image"})
_MEDIA_TYPES = frozenset({"input_audio", "input_file", "file", "document", "audio", "video"})
_FIELDS: dict[WireFormat, tuple[str, ...]] = {
    WireFormat.OPENAI_CHAT: ("messages", "response_format"),
    WireFormat.OPENAI_RESPONSES: ("instructions", "input", "text"),
    WireFormat.ANTHROPIC: ("system", "messages"),
    WireFormat.GEMINI: ("systemInstruction", "system_instruction", "contents"),
}
_TOOLS = ("tools", "functions")


def text_bound(text: str) -> int:
    """The most tokens `text` can be: its UTF-8 bytes."""
    return len(text) if text.isascii() else len(text.encode())


def value_bound(value: Any) -> int:
    """The most tokens a part of a request body can be: its strings' bytes, structure and media allowances."""
    if isinstance(value, str):
        return text_bound(value)
    if isinstance(value, MAPPING_TYPES):
        kind = value.get("type")
        if kind in _IMAGE_TYPES:
            return IMAGE_TOKENS
        if kind in _MEDIA_TYPES:
            return MEDIA_TOKENS
        for key in ("inlineData", "fileData", "inline_data", "file_data"):
            media = value.get(key)
            if isinstance(media, MAPPING_TYPES):
                mime = media.get("mimeType") or media.get("mime_type") or ""
                return IMAGE_TOKENS if isinstance(mime, str) and mime.startswith("image/") else MEDIA_TOKENS
        total = MESSAGE_FRAME
        for key, item in value.items():
            if key == "cache_control":
                continue
            total += len(key) + value_bound(item)
        return total
    if isinstance(value, list | tuple):
        return sum(value_bound(item) for item in value)
    if value is None:
        return 0
    return len(orjson.dumps(value, default=str))


def request_bound(body: Mapping[str, Any], format: WireFormat | str, turn_bounds: list[int] | None = None) -> int:
    """The most input tokens the provider can bill for `body` (before the context-window cap). `turn_bounds`:
    each turn's `value_bound` of the conversation list, when the caller has them (`input_fields`)."""
    fmt = _request_format(body, format)
    total = REQUEST_FRAME
    conversation = _CONVERSATION[fmt] if turn_bounds is not None else None
    for name in _FIELDS[fmt]:
        part = body.get(name)
        if part is not None:
            # A list's bound is the sum of its items' bounds: the turns' are taken as they were found.
            total += sum(turn_bounds) if name == conversation and turn_bounds is not None else value_bound(part)
    for name in _TOOLS:
        tools = body.get(name)
        if tools:
            total += TOOLS_FRAME + len(orjson.dumps(tools, default=str))
    return total


def anthropic_cache_marks(body: Mapping[str, Any]) -> tuple[int | None, int | None, int | None, int | None]:
    """What an Anthropic request may write to the prompt cache, in the order the cache reads it (tools, system,
    messages): (counted tokens up to its last `cache_control` breakpoint, counted tokens up to its last 1 h
    breakpoint, and the hard bounds of both). Automatic caching of the whole prompt (a top-level
    `cache_control`) gives None for the whole input, at the TTL it asks for."""
    top = body.get("cache_control")
    if top:
        one_hour = isinstance(top, MAPPING_TYPES) and top.get("ttl") == "1h"
        return (None, None, None, None) if one_hour else (None, 0, None, 0)
    counted, bound = REQUEST_OVERHEAD_TOKENS, REQUEST_FRAME
    marks = [0, 0, 0, 0]  # any TTL counted, 1 h counted, any TTL bound, 1 h bound

    def mark(block: Any) -> None:
        control = block.get("cache_control") if isinstance(block, MAPPING_TYPES) else None
        if control:
            marks[0], marks[2] = counted, bound
            if isinstance(control, MAPPING_TYPES) and control.get("ttl") == "1h":
                marks[1], marks[3] = counted, bound

    tools = body.get("tools") or ()
    if tools:
        bound += TOOLS_FRAME
    for tool in tools:
        counted += estimate_tokens(_json(tool))
        bound += len(orjson.dumps(tool, default=str))
        mark(tool)
    system = body.get("system")
    blocks: list[Any] = system if isinstance(system, list) else ([] if system is None else [system])
    for message in [{"content": blocks, "_system": True}, *(body.get("messages") or ())]:
        if not isinstance(message, MAPPING_TYPES):
            continue
        if not message.get("_system"):
            counted += MESSAGE_OVERHEAD_TOKENS
            bound += MESSAGE_FRAME
        content = message.get("content")
        for block in content if isinstance(content, list) else [content]:
            counted += _content_tokens(block)
            bound += value_bound(block)
            mark(block)
    return marks[0], marks[1], marks[2], marks[3]


def input_fields(body: Mapping[str, Any], format: WireFormat | str, *, writes_cache: bool) -> dict[str, Any]:
    """The `CallRequest` fields that describe a request's input: the counted tokens, their hard bound, and
    (for a request that may write the prompt cache) the marked prefix at each TTL, counted and bounded."""
    fmt = _request_format(body, format)
    turns = body.get(_CONVERSATION[fmt])
    turn_bounds = [value_bound(turn) for turn in turns] if isinstance(turns, list) else None  # walked once for both
    fields: dict[str, Any] = {
        "input_tokens": count_request_tokens(body, fmt),
        "input_bound": request_bound(body, fmt, turn_bounds),
        "input_chain": prefix_chain(body, fmt, turn_bounds),
        "cache_writes": writes_cache,
    }
    if not writes_cache:
        fields["cache_write_tokens"] = 0
        return fields
    if fmt is WireFormat.ANTHROPIC:
        written, written_1h, bound, bound_1h = anthropic_cache_marks(body)
        fields.update(
            cache_write_tokens=written,
            cache_write_1h_tokens=written_1h,
            cache_write_bound=bound,
            cache_write_1h_bound=bound_1h,
        )
    return fields


_CONVERSATION = {
    WireFormat.OPENAI_CHAT: "messages",
    WireFormat.OPENAI_RESPONSES: "input",
    WireFormat.ANTHROPIC: "messages",
    WireFormat.GEMINI: "contents",
}


def prefix_chain(
    body: Mapping[str, Any], format: WireFormat | str, turn_bounds: list[int] | None = None
) -> tuple[tuple[int, int], ...]:
    """Per message of the conversation: (a hash of the request up to and with that message, the bound of what
    follows it). A request that was sent before as exactly such a prefix, and billed A input tokens, bounds
    this one by A + what follows: a conversation that grows by a turn is bounded by its last bill plus the new
    turn's bytes, not by all its bytes (chat templates separate messages by special tokens, so a message
    tokenizes the same whatever follows it)."""
    fmt = _request_format(body, format)
    turns = body.get(_CONVERSATION[fmt])
    if not isinstance(turns, list) or not turns:
        return ()
    rest = {k: v for k, v in body.items() if k not in (_CONVERSATION[fmt], "max_tokens", "stream", "metadata")}
    seed = hashlib.blake2b(orjson.dumps(rest, default=str, option=orjson.OPT_SORT_KEYS), digest_size=8)
    found = turn_bounds if turn_bounds is not None else [value_bound(turn) for turn in turns]
    bounds = [bound + MESSAGE_FRAME for bound in found]
    after = REQUEST_FRAME
    following: list[int] = []
    for size in reversed(bounds):
        following.append(after)
        after += size
    following.reverse()
    chain = []
    for turn, rest_bound in zip(turns, following, strict=True):
        seed.update(orjson.dumps(turn, default=str, option=orjson.OPT_SORT_KEYS))
        chain.append((int.from_bytes(seed.copy().digest(), "big"), rest_bound))
    return tuple(chain)
