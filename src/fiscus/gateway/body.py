"""The body sent upstream: the client's own bytes whenever fiscus changes nothing, or only adds fields.

Most calls need a field added (the output cap the policy sets when the client sent none; `include_usage` on an
OpenAI chat stream), which is spliced in after the opening brace of the client's JSON, so a large prompt is
never serialised again. Replacing a field the client sent (a clamped cap, a downgraded model) or a compressed
body is serialised from the parsed body.
"""

from __future__ import annotations

from typing import Any

import orjson


def upstream_body(raw: bytes, body: dict[str, Any], changes: dict[str, Any], *, rebuilt: bool = False) -> bytes:
    """`raw` (the client's JSON object, parsed as `body`) with `changes` applied. `rebuilt`: `body` was changed in
    place (e.g. compressed), so it has to be serialised whatever `changes` holds."""
    if not changes and not rebuilt:
        return raw
    if rebuilt or any(name in body for name in changes):
        return orjson.dumps(body | changes)
    # Only new names: no duplicate keys can arise, and `raw` is known to be a non-empty JSON object.
    start = raw.index(b"{") + 1
    return raw[:start] + orjson.dumps(changes)[1:-1] + b"," + raw[start:]
