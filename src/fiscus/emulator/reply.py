"""What the emulated model answers: deterministic text or a tool call, sized by steering and the token cap.

Text is a list of pieces, each one output token, so streams emit one delta per token and a cut stream
knows exactly how many tokens it produced.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from fiscus.emulator.steering import Steering
from fiscus.emulator.tokens import count_text

TOOL_MARKER = re.compile(r"\[\[tool:([A-Za-z0-9_.:-]+)\]\]")

_VOCABULARY = (
    "budget", "ledger", "token", "cost", "limit", "window", "request", "reply", "model", "cache",
    "prefix", "stream", "usage", "price", "report", "policy", "tenant", "quota", "spend", "alert",
    "meter", "batch", "route", "retry", "signal", "record", "total", "share", "scope", "trace",
)  # fmt: skip
_SNIPPET_WORDS = 6


@dataclass(slots=True)
class ToolSpec:
    name: str
    schema: dict[str, Any]


@dataclass(slots=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]
    id_suffix: str = field(default_factory=lambda: secrets.token_hex(12))

    @property
    def arguments_json(self) -> str:
        return orjson.dumps(self.arguments).decode()


@dataclass(slots=True)
class Completion:
    pieces: list[str]
    reasoning_tokens: int
    output_tokens: int  # as reported: reasoning + visible text or tool call
    truncated: bool
    tool_call: ToolCall | None = None

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def _example(schema: dict[str, Any]) -> Any:
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object":
        return _arguments(schema)
    return {"integer": 1, "number": 1, "boolean": True, "array": [], "null": None}.get(str(kind), "emulated")


def _arguments(schema: dict[str, Any]) -> dict[str, Any]:
    properties = schema.get("properties") or {}
    return {name: _example(properties.get(name) or {}) for name in schema.get("required") or []}


@lru_cache(maxsize=256)
def _filler(offset: int, count: int) -> tuple[str, ...]:
    """Filler words after the opening; depends only on the offset, so it is computed once per length."""
    words = (_VOCABULARY[(offset + i * 7) % len(_VOCABULARY)] for i in range(count))
    return tuple(f" {word}." if i % 12 == 11 else f" {word}" for i, word in enumerate(words))


def _pieces(user_text: str, count: int, seed: int) -> list[str]:
    if count <= 0:
        return []
    snippet = " ".join(user_text.split()[:_SNIPPET_WORDS]) or "your message"
    opening = ["Emulated", " reply", " to", f' "{snippet}".']
    if count <= len(opening):
        return opening[:count]
    digest = hashlib.sha256(f"{seed}|{user_text}".encode()).digest()
    offset = int.from_bytes(digest[:4], "big") % len(_VOCABULARY)
    return [*opening, *_filler(offset, count - len(opening))]


def choose_tool(
    tools: list[ToolSpec], forced: str | None, user_text: str, after_tool_result: bool, steer: Steering
) -> ToolSpec | None:
    """Pick the tool to call, if any. `forced` is the request's tool_choice: a name, "any" or None."""
    if not tools:
        return None
    by_name = {tool.name: tool for tool in tools}
    if forced is not None:
        return by_name.get(forced, tools[0])
    if after_tool_result:
        return None  # the model answers once it has the tool's result, so agent loops end
    marker = TOOL_MARKER.search(user_text)
    if marker and marker.group(1) in by_name:
        return by_name[marker.group(1)]
    if steer.tool_call == "auto":
        return tools[0]
    return by_name.get(steer.tool_call) if steer.tool_call else None


def plan(user_text: str, tool: ToolSpec | None, cap: int | None, steer: Steering, seed: int) -> Completion:
    """Size the answer: reasoning first, then text or the tool call, never beyond `cap` tokens."""
    reasoning = max(0, steer.reasoning_tokens)
    if tool is not None:
        call = ToolCall(tool.name, _arguments(tool.schema))
        tool_tokens = count_text(call.name + call.arguments_json)
        total = steer.output_tokens if steer.output_tokens is not None else reasoning + tool_tokens
        if cap is None or max(total, reasoning + tool_tokens) <= cap:
            return Completion([], min(reasoning, total), total, False, call)
    if steer.output_tokens is not None:
        total = max(0, steer.output_tokens)
        reasoning = min(reasoning, total)
    else:
        total = reasoning + max(0, steer.reply_tokens)
    truncated = cap is not None and total > cap
    if cap is not None and truncated:
        total = max(0, cap)
        reasoning = min(reasoning, total)
    return Completion(_pieces(user_text, total - reasoning, seed), reasoning, total, truncated)
