"""Google Gemini API: `https://generativelanguage.googleapis.com/v1beta/models/{model}:generateContent`."""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote

from fiscus.providers.endpoint import Endpoint
from fiscus.providers.messages import Operation


class GeminiEndpoint(Endpoint):
    """`x-goog-api-key: <key>` (a header, never the `?key=` query, so URLs in logs carry no secret). Streams
    use `:streamGenerateContent?alt=sse` so the answer arrives as server-sent events like the others."""

    kind = "gemini"
    wire = "gemini"
    default_base_url = "https://generativelanguage.googleapis.com/v1beta"
    default_key_env = "GEMINI_API_KEY"
    operations: ClassVar[frozenset[str]] = frozenset({"generate_content"})
    model_in_body = False

    def url(self, operation: Operation, model: str, stream: bool) -> str:
        self.check(operation)
        name = quote(model.removeprefix("models/"), safe="-._")
        if stream:
            return f"{self.base_url}/models/{name}:streamGenerateContent?alt=sse"
        return f"{self.base_url}/models/{name}:generateContent"

    def auth_headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self._api_key} if self._api_key else {}
