"""What actually goes over the wire: a recording server echoes path, query and headers."""

from __future__ import annotations

import orjson

from fiscus.config import ProviderConfig
from fiscus.providers import Upstream, UpstreamRequest

from .conftest import KEYS


async def _seen(base: str, config: dict, request: UpstreamRequest) -> dict:  # type: ignore[type-arg]
    async with Upstream({"p": ProviderConfig(base_url=base, **config)}, env=KEYS) as up:
        answer = await up.send(request)
    assert answer.status == 200
    return orjson.loads(answer.body)


async def test_azure_deployment_path_api_version_and_api_key(recorder: str) -> None:
    config = {"kind": "azure-openai", "api_key_env": "AZURE_KEY", "api_version": "2024-10-21",
              "deployments": {"gpt-4o": "team-gpt4o"}}  # fmt: skip
    seen = await _seen(recorder, config, UpstreamRequest("p", "chat.completions", "gpt-4o", b'{"messages":[]}'))
    assert seen["path"] == "/openai/deployments/team-gpt4o/chat/completions"
    assert seen["query"] == {"api-version": "2024-10-21"}
    assert seen["headers"]["api-key"] == KEYS["AZURE_KEY"]
    assert "authorization" not in seen["headers"]


async def test_openai_bearer_org_project(recorder: str) -> None:
    config = {"kind": "openai", "api_key_env": "OPENAI_KEY", "organization": "org-9", "project": "proj-3"}
    request = UpstreamRequest(
        "p", "responses", "gpt-4o", b"{}", headers={"Authorization": "Bearer fk-virtual", "x-fiscus-team": "t"}
    )
    seen = await _seen(recorder + "/v1", config, request)
    assert seen["path"] == "/v1/responses"
    headers = seen["headers"]
    assert headers["authorization"] == f"Bearer {KEYS['OPENAI_KEY']}"
    assert headers["openai-organization"] == "org-9" and headers["openai-project"] == "proj-3"
    assert "x-fiscus-team" not in headers and headers["content-type"] == "application/json"


async def test_anthropic_version_and_beta_pass_through(recorder: str) -> None:
    config = {"kind": "anthropic", "api_key_env": "ANTHROPIC_KEY"}
    request = UpstreamRequest(
        "p", "messages", "claude", b"{}", headers={"anthropic-beta": "context-1m-2025-08-07", "x-api-key": "fk-x"}
    )
    seen = await _seen(recorder + "/v1", config, request)
    assert seen["path"] == "/v1/messages"
    headers = seen["headers"]
    assert headers["x-api-key"] == KEYS["ANTHROPIC_KEY"]
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["anthropic-beta"] == "context-1m-2025-08-07"


async def test_gemini_key_in_header_not_query(recorder: str) -> None:
    config = {"kind": "gemini", "api_key_env": "GEMINI_KEY"}
    request = UpstreamRequest("p", "generate_content", "gemini-2.5-pro", b"{}", stream=True)
    up = Upstream({"p": ProviderConfig(base_url=recorder + "/v1beta", **config)}, env=KEYS)
    async with up, up.stream(request) as stream:
        seen = orjson.loads(b"".join([c async for c in stream]))
    assert seen["path"] == "/v1beta/models/gemini-2.5-pro:streamGenerateContent"
    assert seen["query"] == {"alt": "sse"}
    assert seen["headers"]["x-goog-api-key"] == KEYS["GEMINI_KEY"]
