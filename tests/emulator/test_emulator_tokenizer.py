"""Token counting that a caller can set: one token per character for a request (x-emulator-chars-per-token) or a
model (EmulatorConfig.chars_per_token_models), as a real tokenizer counts CJK text or base64; four by default."""

from __future__ import annotations

import httpx
import pytest

from fiscus.emulator import EmulatorConfig, run_in_thread

CJK = "預算は決して超えない。" * 20  # 220 characters
HEADERS = {"x-api-key": "sk-test", "anthropic-version": "2023-06-01"}


def _count(base: str, model: str, **headers: str) -> int:
    body = {"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": CJK}]}
    reply = httpx.post(f"{base}/v1/messages", json=body, headers={**HEADERS, **headers})
    reply.raise_for_status()
    return int(reply.json()["usage"]["input_tokens"])


def test_a_request_or_a_model_counts_one_token_per_character() -> None:
    config = EmulatorConfig(chars_per_token_models={"claude-sonnet-4-5": 1})
    with run_in_thread(config) as base:
        default = _count(base, "claude-haiku-4-5")
        per_char = _count(base, "claude-haiku-4-5", **{"x-emulator-chars-per-token": "1"})
        by_model = _count(base, "claude-sonnet-4-5")
        again = _count(base, "claude-haiku-4-5")  # the setting is the request's own: the next one counts by four
    rendered = len("<|user|>") + len(CJK)
    assert per_char == by_model == rendered and default == again == -(-rendered // 4)


def test_a_bad_count_is_refused_in_the_providers_format() -> None:
    with run_in_thread(EmulatorConfig()) as base:
        body = {"model": "claude-haiku-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
        reply = httpx.post(f"{base}/v1/messages", json=body, headers={**HEADERS, "x-emulator-chars-per-token": "0"})
    assert reply.status_code == 400 and reply.json()["type"] == "error"
    with pytest.raises(ValueError, match="chars_per_token"):
        EmulatorConfig(chars_per_token=0)
