"""Vendors that speak OpenAI's Chat Completions (some also Responses) at their own base URL, with a Bearer key.

Each has its real base URL and key variable as defaults; usage comes back in Chat Completions form, with the
vendor's own additions read by `fiscus.usage.openai_chat` (DeepSeek's cache hit/miss split, OpenRouter's cost).
"""

from __future__ import annotations

from typing import ClassVar

from fiscus.providers.openai import OpenAIEndpoint

_CHAT = frozenset({"chat.completions"})
_CHAT_AND_RESPONSES = frozenset({"chat.completions", "responses"})


class _Compatible(OpenAIEndpoint):
    """`Authorization: Bearer <key>`, plus any `headers` configured for the provider."""

    def auth_headers(self) -> dict[str, str]:
        headers = {name.lower(): value for name, value in self.config.headers.items()}
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        return headers


class DeepSeekEndpoint(_Compatible):
    kind = "deepseek"
    default_base_url = "https://api.deepseek.com"
    default_key_env = "DEEPSEEK_API_KEY"
    operations: ClassVar[frozenset[str]] = _CHAT


class GroqEndpoint(_Compatible):
    kind = "groq"
    default_base_url = "https://api.groq.com/openai/v1"
    default_key_env = "GROQ_API_KEY"
    operations: ClassVar[frozenset[str]] = _CHAT_AND_RESPONSES


class TogetherEndpoint(_Compatible):
    kind = "together"
    default_base_url = "https://api.together.xyz/v1"
    default_key_env = "TOGETHER_API_KEY"
    operations: ClassVar[frozenset[str]] = _CHAT


class MistralEndpoint(_Compatible):
    kind = "mistral"
    default_base_url = "https://api.mistral.ai/v1"
    default_key_env = "MISTRAL_API_KEY"
    operations: ClassVar[frozenset[str]] = _CHAT


class XAIEndpoint(_Compatible):
    kind = "xai"
    default_base_url = "https://api.x.ai/v1"
    default_key_env = "XAI_API_KEY"
    operations: ClassVar[frozenset[str]] = _CHAT_AND_RESPONSES


class OpenRouterEndpoint(_Compatible):
    """OpenRouter returns what it charged in `usage.cost`; fiscus prices the call at that figure. Its optional
    attribution headers (`HTTP-Referer`, `X-Title`) go under the provider's `headers`."""

    kind = "openrouter"
    default_base_url = "https://openrouter.ai/api/v1"
    default_key_env = "OPENROUTER_API_KEY"
    operations: ClassVar[frozenset[str]] = _CHAT


COMPATIBLE_ENDPOINTS = (
    DeepSeekEndpoint,
    GroqEndpoint,
    TogetherEndpoint,
    MistralEndpoint,
    XAIEndpoint,
    OpenRouterEndpoint,
)
