"""What the guards read of a request: its last user or tool text and tool results (loop checks), and whether
it may write the provider's prompt cache (Anthropic `cache_control` markers). The SDK and the gateway read a
request the same way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fiscus.usage.estimate import MAPPING_TYPES
from fiscus.usage.wire import WireFormat


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_text_of(p.get("text") or p.get("content")) for p in content if isinstance(p, MAPPING_TYPES))
    return ""


def last_content(fmt: WireFormat, kwargs: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """The last user/tool text of a request and its tool results, for the loop checks."""
    items = kwargs.get("input" if fmt is WireFormat.OPENAI_RESPONSES else "messages")
    if isinstance(items, str):
        return items, ()
    if not isinstance(items, list) or not items:
        return "", ()
    results: list[str] = []
    for item in reversed(items):
        if not isinstance(item, MAPPING_TYPES):
            break
        role, kind = item.get("role"), item.get("type")
        if role == "tool" or kind == "function_call_output":
            results.append(_text_of(item.get("content") or item.get("output")))
            continue
        if role == "user" and isinstance(item.get("content"), list):
            results.extend(
                _text_of(b.get("content"))
                for b in item["content"]
                if isinstance(b, MAPPING_TYPES) and b.get("type") == "tool_result"
            )
        break
    last = items[-1]
    text = _text_of(last.get("content") or last.get("output")) if isinstance(last, MAPPING_TYPES) else ""
    return text, tuple(results)


def writes_cache(fmt: WireFormat, kwargs: Mapping[str, Any]) -> bool:
    """Whether a request may write the provider's prompt cache: only Anthropic requests with `cache_control`."""
    return fmt is WireFormat.ANTHROPIC and _has_cache_control(kwargs, 0)


def _has_cache_control(value: Any, depth: int) -> bool:
    if isinstance(value, MAPPING_TYPES):
        if "cache_control" in value and value["cache_control"] is not None:
            return True
        return depth < 4 and any(_has_cache_control(v, depth + 1) for v in value.values())
    if isinstance(value, list | tuple):
        return depth < 4 and any(_has_cache_control(v, depth + 1) for v in value)
    return False
