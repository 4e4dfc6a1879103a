"""The shortest prompt each provider's cache takes, per model: one table for the placer and the emulator.

A prefix below its model's minimum is not cached at all (Anthropic ignores the breakpoint; OpenAI and Gemini
simply report no cached tokens), so placing a breakpoint there only announces a saving that never comes.

Sources, as documented by the providers (December 2026):
- Anthropic, "Prompt caching" → "Cache limitations": 4,096 tokens for Claude Opus 4.6, Opus 4.5 and Haiku 4.5;
  2,048 for Sonnet 4.6, Haiku 3.5 and Haiku 3; 1,024 for Sonnet 4.5, Opus 4.1, Opus 4, Sonnet 4, Sonnet 3.7
  (and the retired Sonnet 3.5 and Opus 3).
- OpenAI, "Prompt caching": automatic for prompts of 1,024 tokens or more, on every current model.
- Google, Gemini API "Context caching" → implicit caching (on for Gemini 2.5 and newer): 2,048 tokens for
  Gemini 2.5 Pro, 2.5 Flash and 2.5 Flash-Lite, 4,096 for the Gemini 3 family and newer. Older Gemini models
  have no implicit cache.

A model the table does not name gets its family's largest minimum: announcing no saving for a prompt that
would have been cached costs little, announcing one the provider will not give is the error this table fixes.
"""

from __future__ import annotations

import re

OPENAI_MIN_TOKENS = 1024

ANTHROPIC_MIN_TOKENS: dict[str, int] = {
    "claude-opus-4-6": 4096,
    "claude-opus-4-5": 4096,
    "claude-haiku-4-5": 4096,
    "claude-sonnet-4-6": 2048,
    "claude-3-5-haiku": 2048,
    "claude-3-haiku": 2048,
    "claude-sonnet-4-5": 1024,
    "claude-opus-4-1": 1024,
    "claude-opus-4": 1024,
    "claude-opus-4-0": 1024,
    "claude-sonnet-4": 1024,
    "claude-sonnet-4-0": 1024,
    "claude-3-7-sonnet": 1024,
    "claude-3-5-sonnet": 1024,
    "claude-3-opus": 1024,
}
ANTHROPIC_UNKNOWN_MIN_TOKENS = max(ANTHROPIC_MIN_TOKENS.values())

# (name prefix, minimum) — the first matching prefix wins; None: the model has no implicit cache.
GEMINI_MIN_TOKENS: tuple[tuple[str, int | None], ...] = (
    ("gemini-2.5-", 2048),
    ("gemini-1.", None),
    ("gemini-2.0-", None),
    ("gemma-", None),
)
GEMINI_UNKNOWN_MIN_TOKENS = 4096  # Gemini 3 and newer

# A dated snapshot, a "-latest" alias, a Vertex "@version" or a Bedrock ":n" revision names the same model.
_SUFFIX = re.compile(r"(@.*|-v\d+(:\d+)?|:\d+|-latest|-\d{8})$")
_PREFIX = re.compile(r"^(?:anthropic[./]|models/|[a-z]{2}\.anthropic\.)")


def model_key(model: str) -> str:
    """The model's bare name: lower case, without a provider prefix, date or version suffix."""
    name = _PREFIX.sub("", model.strip().lower())
    while True:
        trimmed = _SUFFIX.sub("", name)
        if trimmed == name:
            return name
        name = trimmed


def is_anthropic(model: str) -> bool:
    return model_key(model).startswith("claude")


def is_gemini(model: str) -> bool:
    return model_key(model).startswith(("gemini", "gemma"))


def anthropic_min_tokens(model: str) -> int:
    """The shortest prefix Anthropic caches for `model` (up to a breakpoint)."""
    return ANTHROPIC_MIN_TOKENS.get(model_key(model), ANTHROPIC_UNKNOWN_MIN_TOKENS)


def gemini_min_tokens(model: str) -> int | None:
    """The shortest prompt Gemini's implicit cache takes for `model`, or None when it has no implicit cache."""
    name = model_key(model)
    for prefix, tokens in GEMINI_MIN_TOKENS:
        if name.startswith(prefix):
            return tokens
    return GEMINI_UNKNOWN_MIN_TOKENS


def min_cacheable_tokens(model: str) -> int | None:
    """The shortest prompt (or prefix) `model`'s provider caches; None when it does not cache by itself."""
    if is_anthropic(model):
        return anthropic_min_tokens(model)
    if is_gemini(model):
        return gemini_min_tokens(model)
    return OPENAI_MIN_TOKENS
