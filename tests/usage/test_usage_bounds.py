"""Hard input bounds and real tokenizers offline: the bytes of the text bound what any byte-level tokenizer
bills; a conversation that extends a billed request is bounded by that bill plus what it adds; the encodings a
package bundles count offline when `FISCUS_TOKENIZER` names them."""

from __future__ import annotations

import pytest

from fiscus.usage import WireFormat, count_request_tokens, estimate
from fiscus.usage.bounds import (
    IMAGE_TOKENS,
    MESSAGE_FRAME,
    REQUEST_FRAME,
    TOOLS_FRAME,
    anthropic_cache_marks,
    input_fields,
    prefix_chain,
    request_bound,
    text_bound,
)

CJK = "預算" * 50  # 100 characters, 300 bytes


def test_text_bound_is_its_utf8_bytes() -> None:
    assert text_bound("hello") == 5 and text_bound(CJK) == 300 and text_bound("é") == 2


def test_request_bound_covers_text_framing_tools_and_media() -> None:
    body = {"messages": [{"role": "user", "content": CJK}]}
    # frame + message frame + the keys and values: "role" "user" "content" + 300 bytes
    assert request_bound(body, WireFormat.OPENAI_CHAT) == REQUEST_FRAME + MESSAGE_FRAME + 4 + 4 + 7 + 300
    assert request_bound(body, WireFormat.OPENAI_CHAT) >= 100 + 8  # one token per character and a marker
    tools = {**body, "tools": [{"type": "function", "function": {"name": "f"}}]}
    assert request_bound(tools, "openai") > request_bound(body, "openai") + TOOLS_FRAME
    image = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}
    assert request_bound(image, "openai") >= IMAGE_TOKENS
    assert count_request_tokens(body, "openai") < request_bound(body, "openai") / 2  # chars / 4 says far less


def test_cache_marks_split_the_prefix_by_ttl() -> None:
    system = [
        {"type": "text", "text": "a" * 400, "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        {"type": "text", "text": "b" * 400, "cache_control": {"type": "ephemeral"}},
    ]
    body = {"system": system, "messages": [{"role": "user", "content": "c" * 400}]}
    written, written_1h, bound, bound_1h = anthropic_cache_marks(body)
    assert written_1h is not None and written is not None and 100 <= written_1h < written < 300
    assert bound is not None and bound_1h is not None and bound_1h >= 400 and bound >= 800
    assert anthropic_cache_marks({**body, "cache_control": {"type": "ephemeral"}}) == (None, 0, None, 0)
    assert anthropic_cache_marks({**body, "cache_control": {"type": "ephemeral", "ttl": "1h"}}) == (None,) * 4
    fields = input_fields(body, WireFormat.ANTHROPIC, writes_cache=True)
    assert fields["cache_write_tokens"] == written and fields["cache_write_1h_tokens"] == written_1h
    assert input_fields(body, WireFormat.ANTHROPIC, writes_cache=False)["cache_write_tokens"] == 0


def test_prefix_chain_matches_the_turns_an_earlier_request_sent() -> None:
    first = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    second = {
        "model": "m",
        "max_tokens": 99,  # the output cap is no part of what is billed as input
        "messages": [*first["messages"], {"role": "assistant", "content": "hello"}, {"role": "user", "content": CJK}],
    }
    one, two = prefix_chain(first, "anthropic"), prefix_chain(second, "anthropic")
    assert len(one) == 1 and len(two) == 3 and two[0][0] == one[0][0]
    assert two[0][1] > 300 > two[2][1]  # what follows the first turn: the reply and the CJK turn's bytes
    other = {**second, "system": "another prompt"}
    assert prefix_chain(other, "anthropic")[0][0] != one[0][0]  # a different prompt is a different request


def test_bundled_tokenizer_counts_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FISCUS_TOKENIZER", "o200k_base")
    estimate._encoder.cache_clear()
    try:
        assert estimate.estimator_name() == "bundled:o200k_base"
        assert estimate.estimate_tokens("The quick brown fox jumps over the lazy dog.") == 10
        assert estimate.estimate_tokens(CJK) > 25  # more than characters / 4 would say
    finally:
        monkeypatch.delenv("FISCUS_TOKENIZER")
        estimate._encoder.cache_clear()
    monkeypatch.setenv("FISCUS_TOKENIZER", "chars")
    estimate._encoder.cache_clear()
    assert estimate.estimator_name() == "chars/4"
    estimate._encoder.cache_clear()
