"""OpenAI (`https://api.openai.com/v1`) and any OpenAI-compatible server (vLLM, Ollama, LM Studio, ...)."""

from __future__ import annotations

from typing import ClassVar

from fiscus.providers.endpoint import Endpoint
from fiscus.providers.messages import Operation

_PATHS = {"chat.completions": "/chat/completions", "responses": "/responses"}


class OpenAIEndpoint(Endpoint):
    """`Authorization: Bearer <key>`; `OpenAI-Organization` / `OpenAI-Project` when configured."""

    kind = "openai"
    wire = "openai"
    default_base_url = "https://api.openai.com/v1"
    default_key_env = "OPENAI_API_KEY"
    operations: ClassVar[frozenset[str]] = frozenset(_PATHS)

    def url(self, operation: Operation, model: str, stream: bool) -> str:
        self.check(operation)
        return self.base_url + _PATHS[operation]

    def auth_headers(self) -> dict[str, str]:
        headers = {"authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        if self.config.organization:
            headers["openai-organization"] = self.config.organization
        if self.config.project:
            headers["openai-project"] = self.config.project
        return headers


class OpenAICompatibleEndpoint(OpenAIEndpoint):
    """A server speaking OpenAI's API at its own base URL, e.g. Ollama at `http://localhost:11434/v1` or vLLM
    at `http://host:8000/v1`. The key is optional: local servers usually take none."""

    kind = "openai-compatible"
    default_base_url = None
    default_key_env = None
    key_required = False
