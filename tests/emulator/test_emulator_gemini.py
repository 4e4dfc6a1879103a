"""Gemini generateContent / streamGenerateContent over plain HTTP, as the REST API is specified."""

from __future__ import annotations

import json
from typing import Any

import httpx

GENERATE = "/models/gemini-2.5-flash:generateContent"
STREAM = "/models/gemini-2.5-flash:streamGenerateContent"


def _body(text: str = "Tell me about budgets", **extra: Any) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}], **extra}


def _sse_payloads(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


def test_generate_content_usage_metadata(gemini: httpx.Client) -> None:
    response = gemini.post(GENERATE, json=_body())
    assert response.status_code == 200
    body = response.json()
    candidate = body["candidates"][0]
    assert candidate["finishReason"] == "STOP" and candidate["content"]["role"] == "model"
    assert candidate["content"]["parts"][0]["text"].startswith("Emulated reply to")
    usage = body["usageMetadata"]
    assert usage["candidatesTokenCount"] == 24
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + 24
    assert "cachedContentTokenCount" not in usage and "thoughtsTokenCount" not in usage
    assert body["modelVersion"] == "gemini-2.5-flash"


def test_key_in_query_string(emulator_url: str) -> None:
    response = httpx.post(f"{emulator_url}/v1beta{GENERATE}?key=abc", json=_body())
    assert response.status_code == 200


def test_auth_errors_in_google_format(emulator_url: str) -> None:
    missing = httpx.post(f"{emulator_url}/v1beta{GENERATE}", json=_body())
    assert missing.status_code == 403 and missing.json()["error"]["status"] == "PERMISSION_DENIED"


def test_thoughts_and_max_output_tokens(gemini: httpx.Client) -> None:
    body = _body(generationConfig={"maxOutputTokens": 20})
    usage_body = gemini.post(GENERATE, json=body, headers={"x-emulator-reasoning-tokens": "8"}).json()
    usage = usage_body["usageMetadata"]
    assert usage_body["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert usage["thoughtsTokenCount"] == 8 and usage["candidatesTokenCount"] == 12
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + 20


def test_stream_sse_final_chunk_carries_usage(gemini: httpx.Client) -> None:
    response = gemini.post(STREAM, params={"alt": "sse"}, json=_body())
    assert response.headers["content-type"].startswith("text/event-stream")
    payloads = _sse_payloads(response.text)
    assert len(payloads) == 3  # 24 tokens, 8 per event
    text = "".join(p["candidates"][0]["content"]["parts"][0]["text"] for p in payloads)
    assert text.startswith("Emulated reply to")
    assert all("candidatesTokenCount" not in p["usageMetadata"] for p in payloads[:-1])
    assert payloads[-1]["usageMetadata"]["candidatesTokenCount"] == 24
    assert payloads[-1]["candidates"][0]["finishReason"] == "STOP"


def test_stream_without_alt_is_a_json_array(gemini: httpx.Client) -> None:
    items = gemini.post(STREAM, json=_body()).json()
    assert isinstance(items, list) and items[-1]["usageMetadata"]["candidatesTokenCount"] == 24


def test_cached_content_counts_inside_prompt(gemini: httpx.Client, emulator_url: str) -> None:
    created = gemini.post(
        "/cachedContents",
        json={
            "model": "models/gemini-2.5-flash",
            "contents": [{"role": "user", "parts": [{"text": "Reference manual. " * 300}]}],
            "ttl": "600s",
        },
    ).json()
    assert created["name"].startswith("cachedContents/") and created["usageMetadata"]["totalTokenCount"] > 1024
    plain = gemini.post(GENERATE, json=_body()).json()["usageMetadata"]
    cached = gemini.post(GENERATE, json=_body(cachedContent=created["name"])).json()["usageMetadata"]
    assert cached["cachedContentTokenCount"] == created["usageMetadata"]["totalTokenCount"]
    assert cached["promptTokenCount"] == plain["promptTokenCount"] + cached["cachedContentTokenCount"]
    unknown = gemini.post(
        GENERATE, json=_body(cachedContent="cachedContents/elsewhere"), headers={"x-emulator-cached-tokens": "2048"}
    ).json()["usageMetadata"]
    assert unknown["cachedContentTokenCount"] == 2048


def test_function_call(gemini: httpx.Client) -> None:
    tools = [{"functionDeclarations": [{"name": "find_flight", "parameters": {"type": "object"}}]}]
    body = _body("Book me [[tool:find_flight]]", tools=tools)
    part = gemini.post(GENERATE, json=body).json()["candidates"][0]["content"]["parts"][0]
    assert part == {"functionCall": {"name": "find_flight", "args": {}}}


def test_count_tokens_matches_prompt(gemini: httpx.Client) -> None:
    counted = gemini.post("/models/gemini-2.5-flash:countTokens", json=_body()).json()["totalTokens"]
    assert counted == gemini.post(GENERATE, json=_body()).json()["usageMetadata"]["promptTokenCount"]


def test_injected_429_has_retry_info(gemini: httpx.Client) -> None:
    response = gemini.post(GENERATE, json=_body(), headers={"x-emulator-error": "429"})
    error = response.json()["error"]
    assert response.status_code == 429 and error["status"] == "RESOURCE_EXHAUSTED"
    assert error["details"][0]["retryDelay"] == "1s"


def test_implicit_cache_from_the_models_minimum(gemini: httpx.Client) -> None:
    long = {"systemInstruction": {"parts": [{"text": "Policy text. " * 800}]}}  # ~2,600 tokens
    short = {"systemInstruction": {"parts": [{"text": "Policy text. " * 500}]}}  # ~1,600 tokens
    first = gemini.post(GENERATE, json=_body(**long)).json()["usageMetadata"]
    second = gemini.post(GENERATE, json=_body("Another question", **long)).json()["usageMetadata"]
    assert "cachedContentTokenCount" not in first
    assert 2048 <= second["cachedContentTokenCount"] < second["promptTokenCount"]
    gemini.post(GENERATE, json=_body(**short))
    assert "cachedContentTokenCount" not in gemini.post(GENERATE, json=_body(**short)).json()["usageMetadata"]
    old = "/models/gemini-2.0-flash:generateContent"  # before 2.5: no implicit cache
    gemini.post(old, json=_body(**long))
    assert "cachedContentTokenCount" not in gemini.post(old, json=_body(**long)).json()["usageMetadata"]
