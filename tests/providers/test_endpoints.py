"""Vendor URLs and auth, built without a network; keys never shown."""

from __future__ import annotations

import pytest

from fiscus.config import ProviderConfig
from fiscus.errors import ConfigError
from fiscus.providers import UnsupportedOperationError, UpstreamRequest, make_endpoint

ENV = {"OPENAI_API_KEY": "sk-secret", "ANTHROPIC_API_KEY": "ant-secret", "GEMINI_API_KEY": "g-secret",
       "AZURE_OPENAI_API_KEY": "az-secret"}  # fmt: skip


def request(operation: str = "chat.completions", model: str = "m", stream: bool = False, **headers: str):
    return UpstreamRequest("p", operation, model, b"{}", stream=stream, headers=headers)  # type: ignore[arg-type]


def test_openai_defaults() -> None:
    ep = make_endpoint("openai", ProviderConfig(kind="openai", organization="org-1", project="proj-1"), ENV)
    assert ep.url("chat.completions", "gpt-4o", False) == "https://api.openai.com/v1/chat/completions"
    assert ep.url("responses", "gpt-4o", True) == "https://api.openai.com/v1/responses"
    headers = ep.headers(request(stream=True))
    assert headers["authorization"] == "Bearer sk-secret"
    assert headers["openai-organization"] == "org-1" and headers["openai-project"] == "proj-1"
    assert headers["accept"] == "text/event-stream"


def test_anthropic_defaults() -> None:
    ep = make_endpoint("anthropic", ProviderConfig(kind="anthropic"), ENV)
    assert ep.url("messages", "claude", False) == "https://api.anthropic.com/v1/messages"
    headers = ep.headers(request("messages", **{"anthropic-beta": "prompt-caching-2024-07-31"}))
    assert headers["x-api-key"] == "ant-secret"
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert "authorization" not in headers


def test_gemini_defaults() -> None:
    ep = make_endpoint("gemini", ProviderConfig(kind="gemini"), ENV)
    base = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash"
    assert ep.url("generate_content", "gemini-2.5-flash", False) == f"{base}:generateContent"
    assert ep.url("generate_content", "models/gemini-2.5-flash", True) == f"{base}:streamGenerateContent?alt=sse"
    assert ep.headers(request("generate_content"))["x-goog-api-key"] == "g-secret"


def test_azure_deployment_path_and_version() -> None:
    config = ProviderConfig(
        kind="azure-openai",
        base_url="https://res.openai.azure.com/",
        api_version="2024-06-01",
        deployments={"gpt-4o": "prod-gpt4o"},
    )
    ep = make_endpoint("azure", config, ENV)
    assert ep.url("chat.completions", "gpt-4o", False) == (
        "https://res.openai.azure.com/openai/deployments/prod-gpt4o/chat/completions?api-version=2024-06-01"
    )
    assert ep.url("chat.completions", "other", True).endswith(
        "/openai/deployments/other/chat/completions?api-version=2024-06-01"
    )
    headers = ep.headers(request())
    assert headers["api-key"] == "az-secret" and "authorization" not in headers


def test_ollama_needs_no_key() -> None:
    ep = make_endpoint("ollama", ProviderConfig(kind="openai-compatible", base_url="http://localhost:11434/v1"), {})
    assert ep.url("chat.completions", "llama3.2", False) == "http://localhost:11434/v1/chat/completions"
    assert "authorization" not in ep.headers(request())


def test_client_credentials_and_fiscus_headers_are_not_forwarded() -> None:
    ep = make_endpoint("openai", ProviderConfig(kind="openai"), ENV)
    headers = ep.headers(
        request(
            **{
                "Authorization": "Bearer fk-virtual",
                "x-api-key": "x",
                "X-Fiscus-Team": "t",
                "Host": "h",
                "x-stainless-lang": "python",
            }
        )
    )
    assert headers["authorization"] == "Bearer sk-secret"
    assert "x-api-key" not in headers and "x-fiscus-team" not in headers and "host" not in headers
    assert headers["x-stainless-lang"] == "python"


def test_keys_are_redacted_and_required() -> None:
    ep = make_endpoint("openai", ProviderConfig(kind="openai"), ENV)
    assert "sk-secret" not in repr(ep) and "api_key=<set>" in repr(ep)
    with pytest.raises(ConfigError, match="environment variable OPENAI_API_KEY is not set") as info:
        make_endpoint("openai", ProviderConfig(kind="openai"), {})
    assert "sk-" not in str(info.value)


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown kind 'cohere'"):
        make_endpoint("x", ProviderConfig(kind="cohere"), ENV)
    with pytest.raises(ConfigError, match="base_url is required"):
        make_endpoint("x", ProviderConfig(kind="azure-openai"), ENV)


def test_unsupported_operation() -> None:
    ep = make_endpoint("anthropic", ProviderConfig(kind="anthropic"), ENV)
    with pytest.raises(UnsupportedOperationError, match=r"does not serve 'chat\.completions'"):
        ep.url("chat.completions", "claude", False)


def test_fallback_model_rewrites_body_only_where_the_model_is_in_it() -> None:
    req = UpstreamRequest("p", "chat.completions", "a", b'{"model": "a", "messages": []}')
    openai = make_endpoint("openai", ProviderConfig(kind="openai"), ENV)
    assert openai.body(req, "a") is req.body
    assert b'"model":"b"' in openai.body(req, "b")
    gemini = make_endpoint("gemini", ProviderConfig(kind="gemini"), ENV)
    assert gemini.body(req, "b") is req.body
