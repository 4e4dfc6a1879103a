"""Each cloud and compatible vendor as a provider kind: its real URL and auth by default, and a round trip through
the emulator speaking that vendor's dialect, read and priced as that vendor bills it."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import orjson
import pytest

from fiscus.config import ProviderConfig
from fiscus.errors import ConfigError
from fiscus.pricing import PriceCatalogue
from fiscus.providers import Upstream, UpstreamRequest, make_endpoint
from fiscus.usage import WireFormat, usage_from_body

from .conftest import KEYS, FakeTime

ENV = {
    "DEEPSEEK_API_KEY": "ds",
    "GROQ_API_KEY": "gq",
    "TOGETHER_API_KEY": "tg",
    "MISTRAL_API_KEY": "ms",
    "XAI_API_KEY": "xa",
    "OPENROUTER_API_KEY": "or",
    "AWS_BEARER_TOKEN_BEDROCK": "br",
    "VERTEX_ACCESS_TOKEN": "vx",
}
CHAT = {"messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {"max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
GEMINI = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


@pytest.mark.parametrize(
    ("kind", "url"),
    [
        ("deepseek", "https://api.deepseek.com/chat/completions"),
        ("groq", "https://api.groq.com/openai/v1/chat/completions"),
        ("together", "https://api.together.xyz/v1/chat/completions"),
        ("mistral", "https://api.mistral.ai/v1/chat/completions"),
        ("xai", "https://api.x.ai/v1/chat/completions"),
        ("openrouter", "https://openrouter.ai/api/v1/chat/completions"),
        ("bedrock", "https://bedrock-runtime.us-east-1.amazonaws.com/openai/v1/chat/completions"),
    ],
)
def test_compatible_vendors_default_to_their_real_urls_and_bearer_keys(kind: str, url: str) -> None:
    endpoint = make_endpoint(kind, ProviderConfig(kind=kind), ENV)
    assert endpoint.url("chat.completions", "m", False) == url
    key = ENV[endpoint.default_key_env or ""]
    assert endpoint.headers(UpstreamRequest(kind, "chat.completions", "m", b"{}"))["authorization"] == f"Bearer {key}"


def test_openrouter_attribution_headers_are_sent() -> None:
    config = ProviderConfig(kind="openrouter", headers={"HTTP-Referer": "https://app.example", "X-Title": "app"})
    headers = make_endpoint("or", config, ENV).headers(UpstreamRequest("or", "chat.completions", "m", b"{}"))
    assert (headers["http-referer"], headers["x-title"]) == ("https://app.example", "app")


def test_bedrock_urls_and_messages_body() -> None:
    endpoint = make_endpoint("br", ProviderConfig(kind="bedrock", region="eu-west-1"), ENV)
    model = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert endpoint.url("messages", model, False) == (
        "https://bedrock-runtime.eu-west-1.amazonaws.com/model/eu.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke"
    )
    body = orjson.dumps({"model": model, "stream": False, **MESSAGES})
    sent = orjson.loads(endpoint.body(UpstreamRequest("br", "messages", model, body), model))
    assert sent == {"anthropic_version": "bedrock-2023-05-31", **MESSAGES}
    assert endpoint.url("messages", model, True).endswith("-v1%3A0/invoke-with-response-stream")
    streamed = UpstreamRequest("br", "messages", model, body, stream=True)
    assert endpoint.headers(streamed)["accept"] == "application/vnd.amazon.eventstream"


def test_vertex_urls_need_a_project() -> None:
    with pytest.raises(ConfigError, match="project is required"):
        make_endpoint("vx", ProviderConfig(kind="vertex"), ENV)
    regional = make_endpoint("vx", ProviderConfig(kind="vertex", project="acme", region="us-east5"), ENV)
    root = "https://us-east5-aiplatform.googleapis.com/v1/projects/acme/locations/us-east5/publishers"
    assert regional.url("messages", "claude-sonnet-4-5@20250929", True) == (
        f"{root}/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict"
    )
    global_ = make_endpoint("vx", ProviderConfig(kind="vertex", project="acme"), ENV)
    assert global_.url("generate_content", "gemini-2.5-flash", False) == (
        "https://aiplatform.googleapis.com/v1/projects/acme/locations/global/publishers/google/models/"
        "gemini-2.5-flash:generateContent"
    )
    assert global_.headers(UpstreamRequest("vx", "generate_content", "m", b"{}"))["authorization"] == "Bearer vx"


def _configs(base: str) -> dict[str, ProviderConfig]:
    raw: dict[str, dict[str, Any]] = {
        "deepseek": {"kind": "deepseek", "base_url": base, "api_key_env": "OPENAI_KEY"},
        "groq": {"kind": "groq", "base_url": f"{base}/openai/v1", "api_key_env": "OPENAI_KEY"},
        "openrouter": {"kind": "openrouter", "base_url": f"{base}/api/v1", "api_key_env": "OPENAI_KEY"},
        "azure": {"kind": "azure-openai", "base_url": base, "api_key_env": "AZURE_KEY"},
        "bedrock": {"kind": "bedrock", "base_url": base, "api_key_env": "ANTHROPIC_KEY"},
        "vertex": {"kind": "vertex", "base_url": f"{base}/v1", "project": "acme", "region": "us-east5",
                   "api_key_env": "ANTHROPIC_KEY"},
        "vertex-gemini": {"kind": "vertex", "base_url": f"{base}/v1", "project": "acme", "api_key_env": "GEMINI_KEY"},
    }  # fmt: skip
    return {name: ProviderConfig(**fields) for name, fields in raw.items()}


async def _send(up: Upstream, provider: str, operation: str, model: str, body: dict[str, Any], **headers: str):  # type: ignore[no-untyped-def]
    payload = orjson.dumps({"model": model, **body} if operation != "generate_content" else body)
    answer = await up.send(UpstreamRequest(provider, operation, model, payload, headers=headers))  # type: ignore[arg-type]
    assert answer.status == 200, answer.body
    return orjson.loads(answer.body)


async def test_each_vendor_round_trips_through_its_emulated_dialect(emulator: str, fake_time: FakeTime) -> None:
    catalogue = PriceCatalogue()
    async with Upstream(
        _configs(emulator), env=KEYS, clock=fake_time.clock, sleep=fake_time.sleep, rng=random.Random(1)
    ) as up:
        deepseek = await _send(up, "deepseek", "chat.completions", "deepseek-chat", CHAT)
        groq = await _send(up, "groq", "chat.completions", "llama-3.3-70b-versatile", CHAT)
        routed = await _send(
            up, "openrouter", "chat.completions", "openai/gpt-4o", CHAT, **{"x-emulator-cost": "0.0042"}
        )
        azure = await _send(up, "azure", "chat.completions", "gpt-4o", CHAT)
        bedrock = await _send(up, "bedrock", "messages", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", MESSAGES)
        vertex = await _send(up, "vertex", "messages", "claude-sonnet-4-5@20250929", MESSAGES)
        vertex_gemini = await _send(up, "vertex-gemini", "generate_content", "gemini-2.5-flash", GEMINI)

    usage = usage_from_body(deepseek, WireFormat.OPENAI_CHAT)
    assert deepseek["usage"]["prompt_cache_miss_tokens"] == usage.input_tokens > 0
    assert usage_from_body(groq, WireFormat.OPENAI_CHAT).output_tokens > 0
    reported = usage_from_body(routed, WireFormat.OPENAI_CHAT)
    cost = catalogue.price(reported, provider="openrouter", model="openai/gpt-4o")
    assert (cost.total, cost.provider_reported) == (Decimal("0.0042"), True)
    assert azure["model"] == "gpt-4o"  # the deployment named the model
    for body, model in (
        (bedrock, "us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
        (vertex, "claude-sonnet-4-5@20250929"),
    ):
        assert body["type"] == "message" and body["model"] == model
    sonnet = usage_from_body(bedrock, WireFormat.ANTHROPIC)
    assert catalogue.price(sonnet, provider="bedrock", model=bedrock["model"]).input == (
        Decimal(sonnet.input_tokens) * Decimal("3.3") / 1_000_000  # the regional profile's rate
    )
    assert "candidates" in vertex_gemini


async def test_the_clouds_refuse_what_the_real_ones_refuse(emulator: str) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=emulator) as client:
        no_version = await client.post(
            "/model/anthropic.claude-sonnet-4-5-20250929-v1:0/invoke",
            json=MESSAGES,
            headers={"authorization": f"Bearer {KEYS['ANTHROPIC_KEY']}"},
        )
        assert no_version.status_code == 400 and "bedrock-2023-05-31" in no_version.json()["message"]
        assert no_version.headers["x-amzn-errortype"].startswith("ValidationException")
        unversioned = await client.post("/openai/deployments/gpt-4o/chat/completions", json=CHAT,
                                        headers={"api-key": KEYS["AZURE_KEY"]})  # fmt: skip
        assert unversioned.status_code == 404
        keyless = await client.post(
            "/v1/projects/acme/locations/global/publishers/google/models/gemini-2.5-flash:generateContent", json=GEMINI
        )
        assert keyless.status_code == 401 and keyless.json()["error"]["status"] == "UNAUTHENTICATED"
