"""The implicit identity of a conversation that names no session: the caller's key, its agent and a
fingerprint of the conversation's stable prefix (the system prompt and the first user turn).

An agent resends its whole history on every call, so the prefix stays put while the tail grows; two calls
with the same key, agent and prefix belong to one run. A subagent that inherits its parent's context shares
the parent's prefix and so its conversation, which is what lets recursive spawning be seen as one run. Pure:
it reads a request body (Chat Completions, Messages or Responses shapes) and hashes; nothing is kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

PREFIX = "c-"  # implicit ids never collide with an x-fiscus-session a client sends (those are checked as given)
_PREFIX_CHARS = 4_000  # of each prefix part: enough to tell runs apart, bounded on a huge system prompt


def conversation_id(api_key: str | None, agent: str | None, body: Mapping[str, Any]) -> str:
    """`c-` + 16 hex digits of a hash over key, agent and the stable prefix of `body`."""
    digest = hashlib.blake2b(digest_size=8)
    for part in (api_key or "", agent or "", *stable_prefix(body)):
        digest.update(part[:_PREFIX_CHARS].encode("utf-8", "replace"))
        digest.update(b"\x00")
    return PREFIX + digest.hexdigest()


def stable_prefix(body: Mapping[str, Any]) -> tuple[str, str]:
    """(system prompt, first user turn) as text; either may be empty."""
    system = _text(body.get("system")) or _text(body.get("instructions"))
    turns = body.get("messages")
    if not isinstance(turns, list):
        turns = body.get("input")
    if isinstance(turns, str):
        return system, turns
    first = ""
    for turn in turns if isinstance(turns, list) else ():
        if not isinstance(turn, Mapping):
            continue
        role = turn.get("role")
        if role in ("system", "developer") and not system:
            system = _text(turn.get("content"))
        elif role == "user":
            first = _text(turn.get("content"))
            break
    return system, first


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return ""
