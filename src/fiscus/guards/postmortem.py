"""Post-mortem files: what a breaker trip leaves behind for whoever looks into it, with no prompt or completion
text unless the operator opts in (`guards.postmortem_text: true`).

By default every text a session's state carries (its recent inputs, the messages agents exchanged, tool call
arguments, the stop reason) is replaced by its fingerprint: a SHA-256 prefix and its length, enough to tell
repeats apart and to match a file against a log the operator holds, not to read what was said. Tool names,
models, counts, costs and the account-wide figures are kept as they are.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Fields of a session's state (`Session.state`, the gateway's) and of `LoopDetector.snapshot` that hold text.
_TEXT_FIELDS = frozenset({"recent_inputs", "exchange", "reason", "content", "message", "stopped"})


def fingerprint(text: str) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16], "chars": len(text)}


def tool_name(call: str) -> str:
    """`name(args)` (a canonical tool call) → `name`."""
    return call.split("(", 1)[0]


def minimise(value: Any, *, field: str | None = None) -> Any:
    """`value` with every text in a text field fingerprinted and tool calls cut to their names."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "recent_tool_calls" and isinstance(item, list):
                out[key] = [[tool_name(str(c)) for c in step] if isinstance(step, list) else step for step in item]
            elif key == "tool_call" and isinstance(item, str):
                out[key] = {"name": tool_name(item), **fingerprint(item)}
            else:
                out[key] = minimise(item, field=str(key))
        return out
    if isinstance(value, list | tuple):
        return [minimise(item, field=field) for item in value]
    if isinstance(value, str) and field in _TEXT_FIELDS:
        return fingerprint(value)
    return value


def write_postmortem(
    folder: Path,
    *,
    scope: str,
    reason: str,
    message: str,
    opened_at: float,
    details: Mapping[str, Any],
    session: Mapping[str, Any] | None,
    account: Mapping[str, Any] | None,
    include_text: bool,
) -> Path:
    """Write one trip's post-mortem as JSON under `folder`; the file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromtimestamp(opened_at, UTC).strftime("%Y%m%dT%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in scope)
    path = folder / f"{stamp}-{safe}-{reason}-{time.time_ns() % 10**9}.json"
    body: dict[str, Any] = {
        "scope": scope,
        "reason": reason,
        "message": message,
        "opened_at": datetime.fromtimestamp(opened_at, UTC).isoformat(),
        "details": dict(details),
        "account": dict(account) if account is not None else None,
        "session": session if include_text or session is None else minimise(session),
        "text_included": include_text,
    }
    path.write_text(json.dumps(body, indent=2, default=str), encoding="utf-8")
    return path
