"""A provider that fails falls back to one that speaks the other wire format: the client gets its own protocol,
whole or streamed, and the call is priced and recorded as the provider and model that served it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from fiscus.config import ProviderConfig
from fiscus.gateway import run_gateway_in_thread
from fiscus.governor import Governor
from fiscus.keys import KeyRing, open_key_store
from fiscus.money import to_nanos
from fiscus.pricing import PriceCatalogue
from tests.gateway.conftest import UPSTREAM_KEY_ENV, Real, make_config

POLICY = """
version: 1
budgets:
  - name: growth-daily
    scope: {team: growth}
    window: day
    limit: {usd: 100}
"""
MESSAGES = [{"role": "user", "content": "Summarise the quarter."}]


@pytest.fixture
def real(tmp_path: Path, emulator_url: str) -> Iterator[Real]:
    os.environ.setdefault(UPSTREAM_KEY_ENV, "sk-emulator")
    (tmp_path / "policy.yaml").write_text(POLICY, encoding="utf-8")
    base = make_config(tmp_path, emulator_url, "memory://")
    providers = {
        "openai-eu": base.providers["openai"].model_copy(update={"fallbacks": ["claude/claude-haiku-4-5"]}),
        "claude": base.providers["anthropic"].model_copy(update={"fallbacks": ["openai-eu/gpt-4o-mini"]}),
    }
    assert all(isinstance(p, ProviderConfig) for p in providers.values())
    config = base.model_copy(update={"policy": tmp_path / "policy.yaml", "providers": providers})
    governor = Governor.from_config(config)
    keyring = KeyRing(open_key_store(config.keys))
    secret, _ = keyring.create(agent="support-bot", team="growth", environment="test")
    try:
        with run_gateway_in_thread(config, governor=governor, keyring=keyring) as url:
            yield Real(url, secret, governor, config.ledger, keyring)
    finally:
        governor.close()


def test_openai_clients_are_served_by_the_anthropic_fallback(real: Real) -> None:
    failing = real.openai(default_headers={"x-emulator-error": "503"})  # the emulator fails the primary only
    answer = failing.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert answer.object == "chat.completion" and answer.model.startswith("claude-haiku-4-5")
    assert answer.choices[0].message.content and answer.usage is not None and answer.usage.completion_tokens > 0
    chunks = list(failing.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    assert chunks[-1].choices[0].finish_reason == "stop" and all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks)

    events = real.events()
    assert len(events) == 2
    catalogue = PriceCatalogue()
    for event in events:
        assert (event.provider, event.requested_model, event.served_model) == ("claude", "gpt-4o", "claude-haiku-4-5")
        assert event.usage.output_tokens > 0 and "unpriced" not in event.tags
        expected = catalogue.sheet(provider="anthropic", model="claude-haiku-4-5").cost(event.usage).total
        assert event.cost.total == expected > 0
    (status,) = real.governor.status()
    assert status.spent.nanos == sum(to_nanos(e.cost.total) for e in events) and status.reserved.nanos == 0


def test_anthropic_clients_are_served_by_the_openai_fallback(real: Real) -> None:
    client = anthropic.Anthropic(
        base_url=real.url, api_key=real.key, max_retries=0, default_headers={"x-emulator-error": "529"}
    )
    message = client.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=MESSAGES)
    assert message.type == "message" and message.model.startswith("gpt-4o-mini")
    assert message.content[0].type == "text" and message.usage.output_tokens > 0
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=50, messages=MESSAGES) as stream:
        final = stream.get_final_message()
    assert final.stop_reason in ("end_turn", "max_tokens") and final.usage.output_tokens > 0

    events = real.events()
    assert [(e.provider, e.served_model, e.streamed) for e in events] == [
        ("openai-eu", "gpt-4o-mini", False),
        ("openai-eu", "gpt-4o-mini", True),
    ]
    catalogue = PriceCatalogue()
    for event in events:
        assert event.cost.total == catalogue.sheet(provider="openai", model="gpt-4o-mini").cost(event.usage).total
    assert events[1].usage.output_tokens == final.usage.output_tokens


def test_without_a_fallback_the_failure_is_the_clients_error(real: Real) -> None:
    client = real.openai(default_headers={"x-emulator-error": "400"})  # not retryable: no fallback is tried
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    (event,) = real.events()
    assert (event.status, event.provider) == ("error", "openai-eu") and event.cost.total == 0
