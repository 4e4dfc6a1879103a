"""The same gateway on the Redis budget store: calls settle exactly, streams and blocks release what they held."""

from __future__ import annotations

import anthropic
import openai
import pytest
from tests.gateway.conftest import serve

from fiscus.engine.decision import Action

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def redis_gw(tmp_path, emulator_url, redis_url, redis_prefix):
    gen = serve(tmp_path, emulator_url, f"{redis_url}?prefix={redis_prefix}")
    yield next(gen)
    next(gen, None)


def test_redis_store_paths(redis_gw) -> None:
    client = openai.OpenAI(base_url=redis_gw.url + "/v1", api_key=redis_gw.key, max_retries=0)
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert redis_gw.governor.events[-1].usage.output_tokens == completion.usage.completion_tokens
    assert list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    claude = anthropic.Anthropic(base_url=redis_gw.url, api_key=redis_gw.key, max_retries=0)
    with claude.messages.stream(model="claude-haiku-4-5", max_tokens=50, messages=MESSAGES) as stream:
        stream.get_final_message()
    redis_gw.governor.plan.action = Action.BLOCK
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    reserved = redis_gw.governor.reserved()
    assert (reserved.nanos, reserved.requests) == (0, 0)
    assert [e.status for e in redis_gw.governor.events] == ["ok", "ok", "ok", "blocked"]
