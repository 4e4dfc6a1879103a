"""Malformed bodies get the provider's 4xx, never a crash: arbitrary JSON driven in-process over ASGI."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fiscus.emulator import EmulatorConfig, create_app

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5000) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
_fields = ("messages", "input", "contents", "system", "tools", "tool_choice", "max_tokens", "generationConfig")
_bodies = st.fixed_dictionaries(
    {"model": st.just("any-model")}, optional={name: _json | st.lists(_json, max_size=3) for name in _fields}
)
_targets = (
    ("/v1/chat/completions", {"authorization": "Bearer k"}),
    ("/v1/responses", {"authorization": "Bearer k"}),
    ("/v1/messages", {"x-api-key": "k", "anthropic-version": "2023-06-01"}),
    ("/v1beta/models/gemini-2.5-flash:generateContent", {"x-goog-api-key": "k"}),
    ("/v1beta/models/gemini-2.5-flash:streamGenerateContent", {"x-goog-api-key": "k"}),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_bodies, target=st.sampled_from(_targets))
async def test_arbitrary_bodies_never_crash(body: dict[str, Any], target: tuple[str, dict[str, str]]) -> None:
    path, headers = target
    transport = httpx.ASGITransport(app=create_app(EmulatorConfig()))
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
        response = await client.post(path, json=body, headers=headers)
    assert response.status_code < 500, response.text


_OPENAI = {"authorization": "Bearer k"}
_ANTHROPIC = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
_GEMINI = {"x-goog-api-key": "k"}
_USER = [{"role": "user", "content": "x"}]
_BAD_TOOLS = {"tools": [{"function": {"name": "f", "parameters": "x"}}], "tool_choice": "required"}


@pytest.mark.parametrize(
    ("path", "headers", "body"),
    [
        ("/v1/chat/completions", _OPENAI, {"model": "m", "messages": _USER, **_BAD_TOOLS}),
        ("/v1/chat/completions", _OPENAI, {"model": "m", "messages": _USER, "stream": True, "stream_options": "x"}),
        ("/v1/responses", _OPENAI, {"model": "m", "input": 5}),
        ("/v1/responses", _OPENAI, {"model": "m", "input": "x", "reasoning": "x", "stream": True}),
        ("/v1/messages", _ANTHROPIC, {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": 5}]}),
        ("/v1/messages", _ANTHROPIC, {"model": "m", "max_tokens": 5, "messages": _USER, "system": 5}),
        ("/v1beta/models/g:generateContent", _GEMINI, {"contents": [{"parts": [{"text": "x"}]}], "toolConfig": 5}),
        ("/v1beta/cachedContents", _GEMINI, {"model": "models/g", "contents": 5}),
    ],
)  # fmt: skip
async def test_unreadable_shapes_are_provider_400s(path: str, headers: dict[str, str], body: dict[str, Any]) -> None:
    transport = httpx.ASGITransport(app=create_app(EmulatorConfig()))
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
        response = await client.post(path, json=body, headers=headers)
    assert response.status_code == 400, response.text
    assert "Invalid request body" in response.text
