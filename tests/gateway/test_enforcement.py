"""Decisions the real policies reach only slowly, scripted on the stand-in governor: a clamped output cap,
partial answers on every streamed protocol, and 429 with a short and a long retry-after. The threshold walk
on the real governor is in test_real_governor.py."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from fiscus.engine.decision import Action

MESSAGES = [{"role": "user", "content": "Summarise the quarter."}]


def _client(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key, max_retries=0)


def _plan(gw, **values) -> None:
    for name, value in values.items():
        setattr(gw.governor.plan, name, value)


def test_max_tokens_clamped(gw) -> None:
    _plan(gw, max_tokens=7)
    completion = _client(gw).chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=500)
    assert completion.usage.completion_tokens <= 7
    assert completion.choices[0].finish_reason == "length"


def test_partial_responses_and_anthropic(gw) -> None:
    _plan(gw, action=Action.PARTIAL)
    raw = _client(gw).responses.with_raw_response.create(model="gpt-4o", input="hi")
    response = raw.parse()
    assert response.status == "completed" and "budget" in response.output_text
    assert raw.headers["x-fiscus-partial"] == "budget_exhausted"
    assert response.model_extra["fiscus"]["partial"] is True
    assert response.model_extra["fiscus"]["code"] == "budget_exhausted"
    events = list(_client(gw).responses.create(model="gpt-4o", input="hi", stream=True))
    assert events[-1].type == "response.completed" and events[-1].model_extra["fiscus"]["partial"] is True
    client = anthropic.Anthropic(base_url=gw.url, api_key=gw.key, max_retries=0)
    message = client.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=MESSAGES)
    assert message.stop_reason == "end_turn" and "exhausted" in message.content[0].text
    assert message.model_extra["fiscus"]["code"] == "budget_exhausted"
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=50, messages=MESSAGES) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "end_turn"


@pytest.mark.parametrize("retry_in", [30, 7200])
def test_block_is_429_with_retry_after(gw, retry_in: int) -> None:
    _plan(gw, action=Action.BLOCK, retry_in_s=retry_in)
    with pytest.raises(openai.RateLimitError) as caught:
        _client(gw).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    headers = caught.value.response.headers
    assert retry_in - 2 <= int(headers["retry-after"]) <= retry_in
    assert caught.value.body["code"] == "budget_exhausted"
    assert ("x-should-retry" in headers) == (retry_in > 60)
    assert gw.governor.events[-1].status == "blocked"
    with httpx.Client() as client:
        response = client.post(
            gw.url + "/v1/messages",
            headers={"x-api-key": gw.key},
            json={"model": "claude-haiku-4-5", "max_tokens": 5, "messages": MESSAGES},
        )
    assert response.status_code == 429
    assert response.json()["type"] == "error" and response.json()["error"]["type"] == "rate_limit_error"
    assert gw.governor.reserved().nanos == 0
