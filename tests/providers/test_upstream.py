"""`Upstream` against the emulator and a recording server on loopback: real sockets, injected sleep."""

from __future__ import annotations

import random
import uuid

import orjson
import pytest

from fiscus.providers import (
    Attempt,
    Backoff,
    RateLimitedError,
    Upstream,
    UpstreamConnectError,
    UpstreamRequest,
)

from .conftest import KEYS, FakeTime, providers

CHAT = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
CHAT_STREAM = orjson.dumps({"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
MESSAGES = orjson.dumps(
    {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
)
GEMINI = orjson.dumps({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})


def chat(provider: str = "openai", stream: bool = False, **headers: str) -> UpstreamRequest:
    body = CHAT_STREAM if stream else CHAT
    return UpstreamRequest(provider, "chat.completions", "gpt-4o-mini", body, stream=stream, headers=headers)


def upstream(configs, fake_time: FakeTime, attempts: list[Attempt] | None = None, **options) -> Upstream:  # type: ignore[no-untyped-def]
    return Upstream(
        configs,
        env=KEYS,
        clock=fake_time.clock,
        sleep=fake_time.sleep,
        rng=random.Random(1),
        on_attempt=attempts.append if attempts is not None else None,
        **options,
    )


async def test_each_vendor_authenticates_against_the_emulator(emulator: str, fake_time: FakeTime) -> None:
    async with upstream(providers(emulator), fake_time) as up:
        openai = await up.send(chat())
        local = await up.send(chat("local"))
        anthropic = await up.send(UpstreamRequest("anthropic", "messages", "claude-haiku-4-5", MESSAGES))
        gemini = await up.send(UpstreamRequest("gemini", "generate_content", "gemini-2.5-flash", GEMINI))
    for answer in (openai, local, anthropic, gemini):
        assert answer.status == 200, answer.body
        assert answer.attempts == 1 and not answer.fallback
    assert orjson.loads(openai.body)["object"] == "chat.completion"
    assert orjson.loads(anthropic.body)["type"] == "message"
    assert "candidates" in orjson.loads(gemini.body)
    assert (openai.provider, openai.model) == ("openai", "gpt-4o-mini")


async def test_a_wrong_key_is_the_providers_401_without_retry(emulator: str, fake_time: FakeTime) -> None:
    attempts: list[Attempt] = []
    async with upstream(providers(emulator), fake_time, attempts) as up:
        up.endpoint("openai")._api_key = "sk-wrong"
        answer = await up.send(chat())
    assert answer.status == 401
    assert [a.outcome for a in attempts] == ["error"] and fake_time.sleeps == []


async def test_stream_passes_bytes_through_as_they_arrive(emulator: str, fake_time: FakeTime) -> None:
    async with upstream(providers(emulator), fake_time) as up:
        request = chat(stream=True, **{"x-emulator-token-latency-ms": "2", "x-emulator-reply-tokens": "12"})
        async with up.stream(request) as stream:
            assert stream.status == 200 and stream.headers["content-type"].startswith("text/event-stream")
            chunks = [chunk async for chunk in stream]
    assert len(chunks) > 3  # paced tokens arrive as separate reads, not one buffered body
    assert chunks[0].startswith(b"data: ") and b"[DONE]" not in chunks[0]
    assert b"".join(chunks).rstrip().endswith(b"data: [DONE]")


async def test_gemini_and_anthropic_streams(emulator: str, fake_time: FakeTime) -> None:
    async with upstream(providers(emulator), fake_time) as up:
        req = UpstreamRequest("gemini", "generate_content", "gemini-2.5-flash", GEMINI, stream=True)
        async with up.stream(req) as stream:
            gemini = b"".join([c async for c in stream])
        req = UpstreamRequest(
            "anthropic", "messages", "claude-haiku-4-5", orjson.dumps({**orjson.loads(MESSAGES), "stream": True}), True
        )
        async with up.stream(req) as stream:
            anthropic = b"".join([c async for c in stream])
    assert gemini.startswith(b"data: ") and b"usageMetadata" in gemini
    assert b"event: message_start" in anthropic and b"event: message_stop" in anthropic


async def test_leaving_a_stream_early_closes_the_connection(emulator: str, fake_time: FakeTime) -> None:
    async with upstream(providers(emulator), fake_time) as up:
        request = chat(stream=True, **{"x-emulator-token-latency-ms": "5", "x-emulator-reply-tokens": "200"})
        async with up.stream(request) as stream:
            async for _chunk in stream:
                break
            connection = stream._served.answer._connection
        assert connection.transport is not None and connection.transport.is_closing()
        assert (await up.send(chat())).status == 200  # the pool still works


async def test_retries_honour_retry_after(emulator: str, fake_time: FakeTime) -> None:
    attempts: list[Attempt] = []
    key = uuid.uuid4().hex
    headers = {"x-emulator-error-sequence": "429,429", "x-emulator-sequence-key": key, "x-emulator-retry-after": "3"}
    async with upstream(providers(emulator), fake_time, attempts) as up:
        answer = await up.send(chat(**headers))
    assert answer.status == 200 and answer.attempts == 3
    assert fake_time.sleeps == [3.0, 3.0]
    assert [(a.outcome, a.status, a.retry) for a in attempts] == [
        ("retry", 429, False),
        ("retry", 429, True),
        ("ok", 200, True),
    ]


async def test_server_errors_back_off_with_full_jitter(emulator: str, fake_time: FakeTime) -> None:
    key = uuid.uuid4().hex
    headers = {"x-emulator-error-sequence": "503,529", "x-emulator-sequence-key": key}
    backoff = Backoff(base_s=1.0, cap_s=30.0)
    async with upstream(providers(emulator), fake_time, backoff=backoff) as up:
        answer = await up.send(chat(**headers))
    assert answer.status == 200
    rng = random.Random(1)  # the same draws the upstream made
    assert fake_time.sleeps == [backoff.delay(0, rng), backoff.delay(1, rng)]
    assert 0 <= fake_time.sleeps[0] <= 1.0 and 0 <= fake_time.sleeps[1] <= 2.0


async def test_retries_stop_at_max_retries_and_return_the_error(emulator: str, fake_time: FakeTime) -> None:
    attempts: list[Attempt] = []
    configs = providers(emulator, openai={"max_retries": 1})
    async with upstream(configs, fake_time, attempts) as up:
        answer = await up.send(chat(**{"x-emulator-error": "500"}))
    assert answer.status == 500 and b"error" in answer.body
    assert [a.outcome for a in attempts] == ["retry", "gave_up"]


async def test_a_long_retry_after_is_not_waited_for(emulator: str, fake_time: FakeTime) -> None:
    attempts: list[Attempt] = []
    async with upstream(providers(emulator), fake_time, attempts, backoff=Backoff(max_retry_after_s=10)) as up:
        answer = await up.send(chat(**{"x-emulator-error": "429", "x-emulator-retry-after": "120"}))
    assert answer.status == 429 and fake_time.sleeps == []
    assert [a.outcome for a in attempts] == ["gave_up"]


async def test_retry_budget_caps_retries(emulator: str, fake_time: FakeTime) -> None:
    attempts: list[Attempt] = []
    options = {"retry_budget_ratio": 0.1, "retry_budget_min": 0}
    async with upstream(providers(emulator), fake_time, attempts, **options) as up:
        for _ in range(30):
            answer = await up.send(chat(**{"x-emulator-error": "503"}))
            assert answer.status == 503
        requests, retries = up.retry_budget("openai").recent
    # 30 failing calls with max_retries=2 would retry 60 times; the budget allows 10 % of calls.
    assert sum(a.outcome == "retry" for a in attempts) == retries == 3
    assert sum(a.outcome == "budget_exhausted" for a in attempts) == 30  # each call ends on the refused retry
    assert requests == 30


async def test_streams_retry_before_the_first_byte(emulator: str, fake_time: FakeTime) -> None:
    key = uuid.uuid4().hex
    headers = {"x-emulator-error-sequence": "529", "x-emulator-sequence-key": key}
    async with upstream(providers(emulator), fake_time) as up, up.stream(chat(stream=True, **headers)) as stream:
        assert stream.status == 200 and stream.attempts == 2
        body = b"".join([c async for c in stream])
    assert body.rstrip().endswith(b"[DONE]") and len(fake_time.sleeps) == 1


async def test_failed_stream_yields_the_error_body(emulator: str, fake_time: FakeTime) -> None:
    configs = providers(emulator, openai={"max_retries": 0})
    async with upstream(configs, fake_time) as up, up.stream(chat(stream=True, **{"x-emulator-error": "400"})) as s:
        assert s.status == 400 and not s.ok
        body = b"".join([c async for c in s])
    assert orjson.loads(body)["error"]


async def test_fallback_serves_after_retries_fail(emulator: str, fake_time: FakeTime) -> None:
    attempts: list[Attempt] = []
    key = uuid.uuid4().hex
    configs = providers(emulator, openai={"max_retries": 1, "fallbacks": ["local/gpt-4.1-nano"]})
    headers = {"x-emulator-error-sequence": "503,503", "x-emulator-sequence-key": key}
    async with upstream(configs, fake_time, attempts) as up:
        answer = await up.send(chat(**headers))
    assert answer.status == 200 and answer.fallback
    assert (answer.provider, answer.model, answer.attempts) == ("local", "gpt-4.1-nano", 3)
    assert orjson.loads(answer.body)["model"].startswith("gpt-4.1-nano")  # the body was rewritten
    assert [(a.provider, a.outcome, a.fallback) for a in attempts] == [
        ("openai", "retry", False),
        ("openai", "gave_up", False),
        ("local", "ok", True),
    ]


async def test_a_fallback_in_the_other_wire_format_answers_in_the_clients(emulator: str, fake_time: FakeTime) -> None:
    attempts: list[Attempt] = []
    configs = providers(emulator, openai={"max_retries": 0, "fallbacks": ["anthropic/claude-haiku-4-5"]})
    async with upstream(configs, fake_time, attempts) as up:
        answer = await up.send(chat(**{"x-emulator-error": "503"}))
    assert answer.status == 200 and answer.fallback
    assert (answer.provider, answer.model) == ("anthropic", "claude-haiku-4-5")
    body = orjson.loads(answer.body)
    assert body["object"] == "chat.completion" and body["model"].startswith("claude-haiku-4-5")
    assert body["choices"][0]["message"]["role"] == "assistant" and body["usage"]["completion_tokens"] > 0
    assert [(a.provider, a.outcome) for a in attempts] == [("openai", "gave_up"), ("anthropic", "ok")]


async def test_a_streamed_fallback_in_the_other_wire_format_streams_the_clients(
    emulator: str, fake_time: FakeTime
) -> None:
    configs = providers(emulator, anthropic={"max_retries": 0, "fallbacks": ["openai/gpt-4o-mini"]})
    request = orjson.dumps({**orjson.loads(MESSAGES), "stream": True})
    headers = {"x-emulator-error": "529"}
    async with upstream(configs, fake_time) as up:
        sent = UpstreamRequest("anthropic", "messages", "claude-haiku-4-5", request, stream=True, headers=headers)
        async with up.stream(sent) as stream:
            assert stream.status == 200 and (stream.provider, stream.fallback) == ("openai", True)
            data = b"".join([chunk async for chunk in stream])
    events = [line.removeprefix(b"event: ") for line in data.splitlines() if line.startswith(b"event: ")]
    assert events[0] == b"message_start" and events[-2:] == [b"message_delta", b"message_stop"]
    assert b"content_block_delta" in events and b"[DONE]" not in data


async def test_a_fallback_that_cannot_carry_the_request_is_skipped(emulator: str, fake_time: FakeTime) -> None:
    attempts: list[Attempt] = []
    configs = providers(emulator, openai={"max_retries": 0, "fallbacks": ["anthropic/claude-haiku-4-5"]})
    two = orjson.dumps({**orjson.loads(CHAT), "n": 2})  # Anthropic answers with one choice only
    async with upstream(configs, fake_time, attempts) as up:
        answer = await up.send(
            UpstreamRequest("openai", "chat.completions", "gpt-4o-mini", two, headers={"x-emulator-error": "503"})
        )
    assert answer.status == 503 and answer.provider == "openai"
    assert [(a.provider, a.outcome) for a in attempts] == [("openai", "gave_up"), ("anthropic", "skipped")]
    assert "n" in (attempts[-1].error or "")


async def test_a_fallback_of_a_format_not_translated_is_skipped(emulator: str, fake_time: FakeTime) -> None:
    attempts: list[Attempt] = []
    configs = providers(emulator, openai={"max_retries": 0, "fallbacks": ["gemini/gemini-2.5-flash"]})
    async with upstream(configs, fake_time, attempts) as up:
        answer = await up.send(chat(**{"x-emulator-error": "503"}))
    assert answer.status == 503 and answer.provider == "openai"
    assert attempts[-1].outcome == "skipped" and "wire format differs" in (attempts[-1].error or "")


async def test_rpm_limiter_refuses_then_falls_back(emulator: str, fake_time: FakeTime) -> None:
    attempts: list[Attempt] = []
    configs = providers(emulator, openai={"rpm": 4, "fallbacks": ["local/gpt-4o-mini"]})
    async with upstream(configs, fake_time, attempts, rate_limit_headroom=0.25, limiter_max_wait_s=0.0) as up:
        served = [(await up.send(chat())).provider for _ in range(4)]
    assert served == ["openai", "openai", "openai", "local"]  # 4 rpm kept 25 % under: 3 per minute
    assert attempts[-2].outcome == "rate_limited" and attempts[-1].fallback


async def test_rpm_limiter_without_fallback_raises(emulator: str, fake_time: FakeTime) -> None:
    configs = providers(emulator, openai={"rpm": 2})
    async with upstream(configs, fake_time, rate_limit_headroom=0.0, limiter_max_wait_s=0.0) as up:
        await up.send(chat())
        await up.send(chat())
        with pytest.raises(RateLimitedError, match="2 requests/min"):
            await up.send(chat())


async def test_connection_errors_retry_then_raise_without_the_key(fake_time: FakeTime) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    attempts: list[Attempt] = []
    async with upstream(providers(dead), fake_time, attempts) as up:
        with pytest.raises(UpstreamConnectError, match=r"cannot connect to 127\.0\.0\.1") as info:
            await up.send(chat())
    assert KEYS["OPENAI_KEY"] not in str(info.value)
    assert [a.outcome for a in attempts] == ["retry", "retry", "gave_up"]
    assert all(a.status is None for a in attempts) and len(fake_time.sleeps) == 2


async def test_route_by_model_pattern(emulator: str, fake_time: FakeTime) -> None:
    configs = providers(emulator, openai={"models": ["gpt-*", "o3*"]}, anthropic={"models": ["claude-*"]})
    up = upstream(configs, fake_time)
    assert up.route("gpt-4o") == "openai" and up.route("claude-opus-4") == "anthropic"
    assert up.route("llama3") is None
    await up.aclose()


async def test_a_stream_cut_mid_way_is_a_provider_error(emulator: str, fake_time: FakeTime) -> None:
    from fiscus.providers import ProviderError

    async with upstream(providers(emulator), fake_time) as up:
        request = chat(stream=True, **{"x-emulator-stream-cut": "2", "x-emulator-reply-tokens": "50"})
        async with up.stream(request) as stream:
            assert stream.status == 200
            with pytest.raises(ProviderError, match="broke the stream off"):
                async for _chunk in stream:
                    pass


async def test_retries_count_against_the_rpm_limit(emulator: str, fake_time: FakeTime) -> None:
    attempts: list[Attempt] = []
    key = uuid.uuid4().hex
    configs = providers(emulator, openai={"rpm": 1})
    headers = {"x-emulator-error-sequence": "500", "x-emulator-sequence-key": key}
    async with upstream(configs, fake_time, attempts, rate_limit_headroom=0.0, limiter_max_wait_s=0.0) as up:
        answer = await up.send(chat(**headers))
    assert answer.status == 500
    assert [a.outcome for a in attempts] == ["retry", "rate_limited"]


async def test_from_config_takes_gateway_settings(emulator: str) -> None:
    from fiscus.config import FiscusConfig, GatewayConfig

    config = FiscusConfig(providers=providers(emulator), gateway=GatewayConfig(retry_budget_ratio=0.25))
    up = Upstream.from_config(config, env=KEYS)
    assert up.retry_budget("openai").ratio == 0.25
    await up.aclose()
