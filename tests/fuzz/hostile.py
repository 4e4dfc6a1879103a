"""Hostile requests as hypothesis strategies: bodies of the wrong shape or type, missing fields, deep nesting,
invalid UTF-8 and JSON, negative and huge output caps, odd `stream` values, and `x-fiscus-*` headers carrying
control characters and very long values."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import strategies as st

MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1-nano", "gpt-4.1\u00e9", "claude-haiku-4-5", "claude-x", "no-such-model"]
FISCUS_HEADERS = [
    "x-fiscus-workflow",
    "x-fiscus-session",
    "x-fiscus-parent-session",
    "x-fiscus-task-class",
    "x-fiscus-tenant",
    "x-fiscus-user",
    "x-fiscus-outcome",
    "x-fiscus-agent",
    "x-fiscus-team",
    "x-fiscus-priority",
    "x-fiscus-override-key",
    "x-fiscus-anything",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
any_json = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=16,
)
caps = (
    st.integers(-(2**63), 2**63 - 1)
    | st.sampled_from([0, -1, 1, 2, 4096, 2**31 - 1, 2**31, 2**53, 2**63 - 1])
    | st.floats(allow_nan=False, allow_infinity=False)
    | any_json
)
streams = st.sampled_from([True, False, None, "true", "false", 1, 0, [], {}, "yes", 1.0]) | any_json
contents = st.text(max_size=200) | st.lists(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "image_url", "tool_result", "x"])}, optional={"text": any_json}
    )
    | any_json,
    max_size=3,
)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "tool", "developer", "nobody"]) | any_json},
    optional={"content": contents | any_json, "tool_calls": any_json, "name": any_json},
)
messages = st.lists(message, max_size=4) | any_json


def _body(content_field: str, content: st.SearchStrategy[Any], caps_fields: tuple[str, ...]) -> st.SearchStrategy[Any]:
    optional: dict[str, st.SearchStrategy[Any]] = {
        "model": st.sampled_from(MODELS) | any_json,
        content_field: content,
        "stream": streams,
        "stream_options": any_json | st.fixed_dictionaries({"include_usage": any_json}),
        "n": any_json,
        "tools": any_json,
        "system": any_json,
        "temperature": any_json,
        "background": any_json,
        "metadata": any_json,
    }
    optional |= {name: caps for name in caps_fields}
    return st.fixed_dictionaries({}, optional=optional) | any_json


CHAT_BODIES = _body("messages", messages, ("max_tokens", "max_completion_tokens"))
RESPONSES_BODIES = _body("input", st.text(max_size=200) | messages, ("max_output_tokens",))
MESSAGES_BODIES = _body("messages", messages, ("max_tokens",))


def _nested(depth: int, kind: str) -> bytes:
    opening, closing = (b"[", b"]") if kind == "list" else (b'{"a":', b"}")
    return (
        b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":'
        + opening * depth
        + b"1"
        + closing * depth
        + b"}]}"
    )


@st.composite
def raw_bodies(draw: st.DrawFn, shapes: st.SearchStrategy[Any]) -> bytes:
    """Bytes that are JSON of a hostile shape, or not JSON at all."""
    kind = draw(st.sampled_from(["json", "json", "json", "binary", "bad-utf8", "truncated", "nested", "empty"]))
    if kind == "json":
        return orjson.dumps(draw(shapes), option=orjson.OPT_NON_STR_KEYS)
    if kind == "binary":
        return draw(st.binary(max_size=300))
    if kind == "bad-utf8":
        junk = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x00"]))
        return b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"' + junk + b'"}],"max_tokens":5}'
    if kind == "truncated":
        whole = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
        return whole[: draw(st.integers(0, len(whole) - 1))]
    if kind == "nested":
        return _nested(draw(st.sampled_from([50, 200, 900, 1100, 5000])), draw(st.sampled_from(["list", "dict"])))
    return b""


# Header values as bytes, sent as they are: control characters (not CR, LF or NUL, which end the header), bytes
# above 0x7f, very long values.
header_values = (
    st.binary(max_size=80).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"").replace(b"\x00", b""))
    | (st.sampled_from([b"a", b"\x01\x02", b"\x7f", b"\xe9t\xe9", b"\x1b[31mred", b"critical", b"background", b" "]))
    | st.integers(257, 20_000).map(lambda n: b"x" * n)
)
fiscus_headers = st.lists(st.tuples(st.sampled_from(FISCUS_HEADERS).map(str.encode), header_values), max_size=4)
