"""The body forwarded upstream: the client's bytes untouched when nothing changes, fields added by splicing
(the output cap, `include_usage`), and a full re-serialisation when a field the client sent is replaced."""

from __future__ import annotations

import orjson
import pytest

from fiscus.gateway.body import upstream_body

RAW = b' {"model":"gpt-4o","messages":[{"role":"user","content":"hi \\u00e9"}],"temperature":0.2}'


def _both(changes: dict, raw: bytes = RAW, **kw: bool) -> tuple[bytes, dict]:
    sent = upstream_body(raw, orjson.loads(raw), changes, **kw)
    return sent, orjson.loads(sent)


def test_unchanged_body_is_the_clients_bytes() -> None:
    body = orjson.loads(RAW)
    assert upstream_body(RAW, body, {}) is RAW


def test_added_fields_keep_the_clients_bytes_after_them() -> None:
    sent, parsed = _both({"max_completion_tokens": 512, "stream_options": {"include_usage": True}})
    assert sent.endswith(RAW[2:])  # everything after the opening brace, byte for byte (escapes included)
    assert parsed == orjson.loads(RAW) | {"max_completion_tokens": 512, "stream_options": {"include_usage": True}}


@pytest.mark.parametrize(
    "changes",
    [{"model": "gpt-4o-mini"}, {"temperature": 1.0, "max_tokens": 9}],
)
def test_replaced_fields_reserialise_without_duplicate_keys(changes: dict) -> None:
    sent, parsed = _both(changes)
    assert parsed == orjson.loads(RAW) | changes
    for name in changes:
        assert sent.count(f'"{name}"'.encode()) == 1


def test_rebuilt_body_is_serialised_even_without_changes() -> None:
    body = orjson.loads(RAW)
    body["messages"] = body["messages"][:0]
    sent = upstream_body(RAW, body, {}, rebuilt=True)
    assert orjson.loads(sent)["messages"] == []
