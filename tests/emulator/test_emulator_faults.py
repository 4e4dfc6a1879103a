"""Injected errors, scripted sequences, rate limits, auth, model lists, latency and mid-stream cuts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from fiscus.emulator import EmulatorConfig, run_in_thread
from fiscus.emulator.config import ManualClock

MESSAGES = [{"role": "user", "content": "hello"}]


def _chat(client: openai.OpenAI, **extra: Any) -> Any:
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, **extra)


def _claude(client: anthropic.Anthropic, **extra: Any) -> Any:
    return client.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES, **extra)


def test_injected_429_in_openai_format(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        _chat(oai, extra_headers={"x-emulator-error": "429"})
    error = caught.value
    assert error.code == "rate_limit_exceeded" and error.type == "requests"
    assert error.response.headers["retry-after"] == "1"
    assert error.response.headers["x-request-id"].startswith("req_")


def test_error_sequence_is_retried_through_by_the_sdk(emulator_url: str, stats: Any) -> None:
    headers = {"x-emulator-error-sequence": "429,429", "x-emulator-retry-after": "0.01"}
    with openai.OpenAI(base_url=f"{emulator_url}/v1", api_key="k", max_retries=2) as client:
        completion = _chat(client, extra_headers=headers)
    assert completion.usage is not None
    counters = stats()
    assert counters["requests"] == 3
    assert counters["by_status"] == {"429": 2, "200": 1}


def test_error_rate_is_seeded_and_repeatable(oai: openai.OpenAI, control: httpx.Client) -> None:
    def outcomes() -> list[bool]:
        results = []
        for _ in range(12):
            try:
                _chat(oai, extra_headers={"x-emulator-error-rate": "0.5", "x-emulator-error-rate-status": "503"})
                results.append(True)
            except openai.InternalServerError as exc:
                assert exc.status_code == 503
                results.append(False)
        return results

    first = outcomes()
    control.post("/_emulator/reset")
    assert outcomes() == first and True in first and False in first


def test_bad_steering_header_is_a_400(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        _chat(oai, extra_headers={"x-emulator-output-tokens": "many"})


def test_requests_per_minute_limit(oai: openai.OpenAI, clock: ManualClock) -> None:
    limit = {"x-emulator-rpm": "2"}
    ok = oai.chat.completions.with_raw_response.create(model="m", messages=MESSAGES, extra_headers=limit)
    assert ok.headers["x-ratelimit-limit-requests"] == "2"
    assert ok.headers["x-ratelimit-remaining-requests"] == "1"
    _chat(oai, extra_headers=limit)
    with pytest.raises(openai.RateLimitError) as caught:
        _chat(oai, extra_headers=limit)
    headers = caught.value.response.headers
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert int(headers["retry-after"]) == 30  # one request refills in 60 s / 2
    clock.advance(30)
    _chat(oai, extra_headers=limit)


def test_tokens_per_minute_limit_counts_max_tokens(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        _chat(oai, max_tokens=500, extra_headers={"x-emulator-tpm": "400"})
    assert caught.value.type == "tokens"


def test_anthropic_rate_limit_headers(claude: anthropic.Anthropic) -> None:
    limit = {"x-emulator-rpm": "1"}
    ok = claude.messages.with_raw_response.create(
        model="claude-haiku-4-5", max_tokens=8, messages=MESSAGES, extra_headers=limit
    )
    assert ok.headers["anthropic-ratelimit-requests-limit"] == "1"
    assert ok.headers["anthropic-ratelimit-requests-remaining"] == "0"
    with pytest.raises(anthropic.RateLimitError) as caught:
        _claude(claude, extra_headers=limit)
    assert caught.value.response.headers["retry-after"] == "60"
    assert caught.value.body["error"]["type"] == "rate_limit_error"


def test_latency(oai: openai.OpenAI) -> None:
    started = time.perf_counter()
    _chat(oai, extra_headers={"x-emulator-latency-ms": "150"})
    assert time.perf_counter() - started >= 0.15


def test_stream_is_paced_per_token(oai: openai.OpenAI) -> None:
    started = time.perf_counter()
    arrivals = [
        time.perf_counter() - started
        for chunk in _chat(
            oai,
            stream=True,
            extra_headers={"x-emulator-token-latency-ms": "25", "x-emulator-reply-tokens": "10"},
        )
        if chunk.choices and chunk.choices[0].delta.content
    ]
    assert len(arrivals) == 10
    assert arrivals[-1] >= 0.25 and arrivals[-1] - arrivals[0] >= 0.2  # deltas arrive over time, not at once


def test_stream_cut_openai_chat(oai: openai.OpenAI, stats: Any) -> None:
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in _chat(
            oai, stream=True, stream_options={"include_usage": True}, extra_headers={"x-emulator-stream-cut": "3"}
        ):
            received.append(chunk)
    assert len(received) == 4  # the role chunk and three content deltas
    assert all(chunk.usage is None for chunk in received)
    assert stats()["streams_cut"] == 1


def test_stream_cut_responses(oai: openai.OpenAI) -> None:
    kinds = []
    with pytest.raises(openai.APIConnectionError):
        for event in oai.responses.create(
            model="gpt-4.1", input="hi", stream=True, extra_headers={"x-emulator-stream-cut": "2"}
        ):
            kinds.append(event.type)
    assert kinds.count("response.output_text.delta") == 2 and "response.completed" not in kinds


def test_stream_cut_anthropic(claude: anthropic.Anthropic) -> None:
    kinds = []
    with (
        pytest.raises(Exception, match="peer closed connection"),
        claude.messages.stream(
            model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES, extra_headers={"x-emulator-stream-cut": "5"}
        ) as stream,
    ):
        for event in stream:
            kinds.append(event.type)
    assert kinds[0] == "message_start" and "message_delta" not in kinds


def test_stream_cut_gemini(gemini: httpx.Client) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    with (
        pytest.raises(httpx.RemoteProtocolError),
        gemini.stream(
            "POST",
            "/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            json=body,
            headers={"x-emulator-stream-cut": "1"},
        ) as response,
    ):
        for _ in response.iter_lines():
            pass


@pytest.fixture(scope="module")
def strict_url() -> Iterator[str]:
    config = EmulatorConfig(
        api_keys=frozenset({"sk-good"}),
        allowed_models=frozenset({"gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash"}),
        error_sequence=(200, 529),
    )
    with run_in_thread(config) as url:
        yield url


def test_wrong_key_in_each_format(strict_url: str) -> None:
    with (
        openai.OpenAI(base_url=f"{strict_url}/v1", api_key="sk-bad-key-1234", max_retries=0) as client,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        _chat(client)
    assert caught.value.code == "invalid_api_key"
    with (
        anthropic.Anthropic(base_url=strict_url, api_key="nope", max_retries=0) as client,
        pytest.raises(anthropic.AuthenticationError) as denied,
    ):
        _claude(client)
    assert denied.value.body["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}
    gemini = httpx.post(
        f"{strict_url}/v1beta/models/gemini-2.5-flash:generateContent",
        json={"contents": []},
        headers={"x-goog-api-key": "nope"},
    )
    assert gemini.status_code == 400 and gemini.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    missing = httpx.post(f"{strict_url}/v1/chat/completions", json={})
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "invalid_request_error"


def test_unknown_model_is_404_and_config_script_runs(strict_url: str) -> None:
    with openai.OpenAI(base_url=f"{strict_url}/v1", api_key="sk-good", max_retries=0) as client:
        with pytest.raises(openai.NotFoundError) as caught:
            client.chat.completions.create(model="gpt-unknown", messages=MESSAGES)
        assert caught.value.code == "model_not_found"
        _chat(client)  # the scripted first call passes (200)
        with pytest.raises(openai.InternalServerError) as overloaded:
            _chat(client)  # the second is the scripted 529
        assert overloaded.value.status_code == 529
        _chat(client)  # the script is over
        assert [model.id for model in client.models.list()] == ["gpt-4o-mini"]
    with (
        anthropic.Anthropic(base_url=strict_url, api_key="sk-good", max_retries=0) as client,
        pytest.raises(anthropic.NotFoundError) as missing,
    ):
        client.messages.create(model="claude-unknown", max_tokens=8, messages=MESSAGES)
    assert missing.value.body["error"]["type"] == "not_found_error"
