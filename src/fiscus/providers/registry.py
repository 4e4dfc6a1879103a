"""Provider kind -> endpoint class."""

from __future__ import annotations

from collections.abc import Mapping

from fiscus.config import ProviderConfig
from fiscus.errors import ConfigError
from fiscus.providers.anthropic import AnthropicEndpoint
from fiscus.providers.azure import AzureOpenAIEndpoint
from fiscus.providers.cloud import BedrockEndpoint, VertexEndpoint
from fiscus.providers.compatible import COMPATIBLE_ENDPOINTS
from fiscus.providers.endpoint import Endpoint
from fiscus.providers.gemini import GeminiEndpoint
from fiscus.providers.openai import OpenAICompatibleEndpoint, OpenAIEndpoint

ENDPOINT_KINDS: dict[str, type[Endpoint]] = {
    cls.kind: cls
    for cls in (
        OpenAIEndpoint,
        OpenAICompatibleEndpoint,
        AnthropicEndpoint,
        GeminiEndpoint,
        AzureOpenAIEndpoint,
        BedrockEndpoint,
        VertexEndpoint,
        *COMPATIBLE_ENDPOINTS,
    )
}


def make_endpoint(name: str, config: ProviderConfig, env: Mapping[str, str]) -> Endpoint:
    try:
        cls = ENDPOINT_KINDS[config.kind]
    except KeyError:
        kinds = ", ".join(ENDPOINT_KINDS)
        raise ConfigError(f"providers.{name}.kind: unknown kind {config.kind!r} (known: {kinds})") from None
    return cls(name, config, env)
