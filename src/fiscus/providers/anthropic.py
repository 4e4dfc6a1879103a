"""Anthropic Messages API: `https://api.anthropic.com/v1/messages`."""

from __future__ import annotations

from typing import ClassVar

from fiscus.providers.endpoint import Endpoint
from fiscus.providers.messages import Operation, UpstreamRequest

ANTHROPIC_VERSION = "2023-06-01"


class AnthropicEndpoint(Endpoint):
    """`x-api-key: <key>` and `anthropic-version` (config `api_version`, default 2023-06-01). A client's
    `anthropic-beta` header passes through untouched, since betas change the request's meaning."""

    kind = "anthropic"
    wire = "anthropic"
    default_base_url = "https://api.anthropic.com/v1"
    default_key_env = "ANTHROPIC_API_KEY"
    operations: ClassVar[frozenset[str]] = frozenset({"messages"})

    def url(self, operation: Operation, model: str, stream: bool) -> str:
        self.check(operation)
        return self.base_url + "/messages"

    def auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": self.config.api_version or ANTHROPIC_VERSION}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        return headers

    def headers(self, request: UpstreamRequest) -> dict[str, str]:
        headers = super().headers(request)
        # A client may pin its own anthropic-version; the configured one wins only when the client sent none.
        client_version = next((v for k, v in request.headers.items() if k.lower() == "anthropic-version"), None)
        if client_version and not self.config.api_version:
            headers["anthropic-version"] = client_version
        return headers
