"""A provider whose whole answer carries a malformed usage count (`"prompt_tokens": "many"`, `-3`): the caller
still gets the answer, and the call is recorded as a flagged estimate, never as zero and never as an exception
after the model was paid for."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import httpx2
import openai
import orjson
import pytest

import fiscus

MESSAGES = [{"role": "user", "content": "Summarise the ledger for the quarter, please."}]
CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Revenue rose."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": "many", "completion_tokens": 5, "total_tokens": 79},
}
MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-haiku-4-5",
    "content": [{"type": "text", "text": "Revenue rose."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": -3, "output_tokens": 5},
}


def _http(body: dict[str, Any], lib: Any = httpx) -> Any:
    """A client whose transport answers every request with `body` (each SDK takes its own httpx flavour)."""
    return lib.Client(transport=lib.MockTransport(lambda _: lib.Response(200, content=orjson.dumps(body))))


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_malformed_count_is_a_flagged_estimate(kind: str, governed: Any) -> None:
    governor, ledger, _, breakers = governed()
    if kind == "openai":
        raw = openai.OpenAI(api_key="sk-test", base_url="http://provider.test/v1", http_client=_http(CHAT))
        client = fiscus.wrap(raw, agent="a", governor=governor, breakers=breakers)
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert reply.choices[0].message.content == "Revenue rose."
    else:
        http = _http(MESSAGE, httpx2)
        raw = anthropic.Anthropic(api_key="sk-test", base_url="http://provider.test", http_client=http)
        client = fiscus.wrap(raw, agent="a", governor=governor, breakers=breakers)
        answer = client.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=MESSAGES)
        assert answer.content[0].text == "Revenue rose."
    [event] = ledger.events
    assert event.usage.estimated and event.usage.input_tokens > 0 and event.usage.output_tokens > 0
    assert event.usage.detail is not None and "malformed" in (event.usage.detail.estimate or "")
    assert event.total_usd > 0
