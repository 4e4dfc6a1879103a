"""An exact count of a request's input from the provider itself, asked for only near a limit.

Far from a limit the byte bound (`usage.bounds`) costs nothing; near one it can be several times what a call
really sends (English prose is about 4.5 bytes a token) and stop a call that fits. Then a door that can ask the
provider to count the request (Anthropic's free `POST /v1/messages/count_tokens`) does so and admits again with
that count (`Decision.count_helps`). The provider says its count may differ slightly from what it bills, so the
bound keeps a margin above it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COUNT_MARGIN = 100  # the bound is the count plus 1 / COUNT_MARGIN of it …
COUNT_SLACK = 16  # … and never less than this many tokens above it

# What Anthropic's count_tokens takes of a Messages request: the input, not the sampling settings.
_ANTHROPIC_COUNTED = ("model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers")


def count_bound(tokens: int) -> int:
    """The input bound an exact count gives."""
    return tokens + max(COUNT_SLACK, -(-tokens // COUNT_MARGIN))


def anthropic_count_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The count_tokens request for a Messages request body."""
    return {key: body[key] for key in _ANTHROPIC_COUNTED if key in body}


def anthropic_counted(answer: Any) -> int | None:
    """The count in a count_tokens answer (its JSON, or the SDK's `MessageTokensCount`); None when it is not one."""
    tokens = answer.get("input_tokens") if isinstance(answer, Mapping) else getattr(answer, "input_tokens", None)
    if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0:
        return tokens
    return None
