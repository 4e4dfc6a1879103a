"""Context compression: make a request fit a token target, keeping what the model needs most.

Pure functions over request bodies in three formats (OpenAI chat `messages`, Responses `input`, Anthropic
`system` + `messages`). In order, until the request fits:
1. shorten large tool results, head and tail kept, with a visible marker saying by how much;
2. drop the oldest conversation groups, keeping the system prompt and the last `keep_last` groups;
   a group is an assistant tool call together with its results, so call/result pairs stay valid;
3. shorten the remaining tool results harder.
The input body is never mutated. The marker text is deliberate: whoever reads the transcript sees the cut.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fiscus.usage.estimate import count_request_tokens, estimate_tokens
from fiscus.usage.wire import WireFormat

Counter = Callable[[str], int]
FIRST_PASS_TOOL_TOKENS = 512
LAST_PASS_TOOL_TOKENS = 64


def shortened_marker(before: int, after: int) -> str:
    return f"[fiscus: tool result shortened from {before} to {after} tokens]"


def dropped_marker(count: int) -> str:
    return f"[fiscus: {count} earlier messages removed to fit the budget]"


def shorten_text(text: str, max_tokens: int, count: Counter = estimate_tokens) -> tuple[str, int]:
    """`text` cut to about `max_tokens`, its head and tail kept around a marker; returns (text, tokens cut)."""
    before = count(text)
    if before <= max_tokens:
        return text, 0
    keep_chars = max(int(len(text) * max_tokens / before), 0)
    head = text[: keep_chars * 2 // 3]
    tail = text[len(text) - keep_chars // 3 :] if keep_chars // 3 else ""
    after = count(head) + count(tail)
    new = f"{head}\n{shortened_marker(before, after)}\n{tail}" if tail else f"{head}\n{shortened_marker(before, after)}"
    return new, max(before - count(new), 0)


def compress(
    body: Mapping[str, Any],
    format: WireFormat | str,
    target_tokens: int,
    *,
    keep_last: int = 4,
    count: Counter = estimate_tokens,
) -> tuple[dict[str, Any], int]:
    """`body` reshaped to fit `target_tokens` of input where it can; returns (new body, tokens cut).

    Tokens cut is measured with the same estimate the budget uses (`count_request_tokens`)."""
    fmt = WireFormat(format)
    if fmt is WireFormat.GEMINI:
        raise ValueError("compress supports openai_chat, openai_responses and anthropic bodies")
    before = count_request_tokens(body, fmt)
    new = dict(body)
    if before <= target_tokens:
        return new, 0
    key = "input" if fmt is WireFormat.OPENAI_RESPONSES else "messages"
    items = new.get(key)
    if not isinstance(items, list):
        return new, 0
    items = list(items)
    new[key] = items

    def size() -> int:
        return count_request_tokens(new, fmt)

    _shorten_tool_results(items, fmt, FIRST_PASS_TOOL_TOKENS, count)
    if size() > target_tokens:
        _drop_old_groups(new, key, fmt, target_tokens, keep_last, size)
        items = new[key]
    if size() > target_tokens:
        _shorten_tool_results(items, fmt, LAST_PASS_TOOL_TOKENS, count)
    return new, max(before - size(), 0)


# --- tool results ----------------------------------------------------------------------------------------------


def _shorten_content(content: Any, max_tokens: int, count: Counter) -> Any:
    if isinstance(content, str):
        return shorten_text(content, max_tokens, count)[0]
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                part = {**part, "text": shorten_text(part["text"], max_tokens, count)[0]}
            parts.append(part)
        return parts
    return content


def _shorten_tool_results(items: list[Any], fmt: WireFormat, max_tokens: int, count: Counter) -> None:
    """In place on the (already copied) list: each changed item is replaced by a changed copy."""
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            continue
        if fmt is WireFormat.OPENAI_CHAT and item.get("role") in ("tool", "function"):
            items[i] = {**item, "content": _shorten_content(item.get("content"), max_tokens, count)}
        elif fmt is WireFormat.OPENAI_RESPONSES and item.get("type") == "function_call_output":
            items[i] = {**item, "output": _shorten_content(item.get("output"), max_tokens, count)}
        elif fmt is WireFormat.ANTHROPIC and item.get("role") == "user" and isinstance(item.get("content"), list):
            blocks = [
                {**block, "content": _shorten_content(block.get("content"), max_tokens, count)}
                if isinstance(block, Mapping) and block.get("type") == "tool_result"
                else block
                for block in item["content"]
            ]
            items[i] = {**item, "content": blocks}


# --- conversation groups ---------------------------------------------------------------------------------------


def _is_system(item: Any, fmt: WireFormat) -> bool:
    return fmt is not WireFormat.ANTHROPIC and isinstance(item, Mapping) and item.get("role") in ("system", "developer")


def _opens_tool_group(item: Any, fmt: WireFormat) -> bool:
    if not isinstance(item, Mapping):
        return False
    if fmt is WireFormat.OPENAI_CHAT:
        return item.get("role") == "assistant" and bool(item.get("tool_calls") or item.get("function_call"))
    if fmt is WireFormat.OPENAI_RESPONSES:
        return item.get("type") in ("function_call", "reasoning")
    content = item.get("content")
    return (
        item.get("role") == "assistant"
        and isinstance(content, list)
        and any(isinstance(b, Mapping) and b.get("type") == "tool_use" for b in content)
    )


def _continues_tool_group(item: Any, fmt: WireFormat) -> bool:
    if not isinstance(item, Mapping):
        return False
    if fmt is WireFormat.OPENAI_CHAT:
        return item.get("role") in ("tool", "function")
    if fmt is WireFormat.OPENAI_RESPONSES:
        return item.get("type") in ("function_call", "function_call_output")
    content = item.get("content")
    return (
        item.get("role") == "user"
        and isinstance(content, list)
        and any(isinstance(b, Mapping) and b.get("type") == "tool_result" for b in content)
    )


def _groups(items: list[Any], fmt: WireFormat) -> list[list[Any]]:
    groups: list[list[Any]] = []
    open_tool = False
    for item in items:
        if open_tool and _continues_tool_group(item, fmt):
            groups[-1].append(item)
            if fmt is WireFormat.ANTHROPIC:  # one user turn carries all results of the tool_use turn
                open_tool = False
            continue
        groups.append([item])
        open_tool = _opens_tool_group(item, fmt)
    return groups


def _drop_old_groups(
    body: dict[str, Any], key: str, fmt: WireFormat, target: int, keep_last: int, size: Callable[[], int]
) -> None:
    items = body[key]
    lead = 0
    while lead < len(items) and _is_system(items[lead], fmt):
        lead += 1
    system, rest = items[:lead], items[lead:]
    groups = _groups(rest, fmt)
    dropped = 0
    while len(groups) > keep_last:
        dropped += len(groups.pop(0))
        marker = [{"role": "user", "content": dropped_marker(dropped)}]
        body[key] = system + marker + [item for group in groups for item in group]
        if size() <= target:
            break
