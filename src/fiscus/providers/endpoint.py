"""An `Endpoint` knows one vendor's URLs and auth; the vendors' modules subclass it. No HTTP happens here."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import ClassVar

import orjson

from fiscus.config import ProviderConfig
from fiscus.errors import ConfigError
from fiscus.providers.messages import Operation, UnsupportedOperationError, UpstreamRequest, Wire
from fiscus.providers.translate import StreamTranslation

# Client headers never forwarded: credentials (the provider's own replace them), hop-by-hop and framing
# headers (the HTTP client sets its own), and fiscus's attribution headers (they are for fiscus only).
_DROPPED = frozenset(
    {
        "authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "proxy-authorization",
        "cookie",
        "host",
        "content-length",
        "content-type",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "upgrade",
        "accept-encoding",
    }
)


class Endpoint(abc.ABC):
    """A configured provider: base URL, credentials and the vendor's headers. The key is held privately and
    never shown (see `__repr__`)."""

    kind: ClassVar[str]
    wire: ClassVar[Wire]
    default_base_url: ClassVar[str | None] = None
    default_key_env: ClassVar[str | None] = None
    operations: ClassVar[frozenset[str]]
    key_required: ClassVar[bool] = True

    def __init__(self, name: str, config: ProviderConfig, env: Mapping[str, str]) -> None:
        self.name = name
        self.config = config
        base_url = config.base_url or self.default_base_url
        if not base_url:
            raise ConfigError(f"providers.{name}: base_url is required for kind {self.kind!r}")
        self.base_url = base_url.rstrip("/")
        key_env = config.api_key_env or self.default_key_env
        key = env.get(key_env) if key_env else None
        if self.key_required and not key:
            raise ConfigError(f"providers.{name}: environment variable {key_env} is not set (the provider's API key)")
        self._api_key = key or None

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return f"{type(self).__name__}(name={self.name!r}, base_url={self.base_url!r}, api_key=<{key}>)"

    def redact(self, data: bytes) -> bytes:
        """`data` (an error answer the client will see) with this provider's key blanked out, should the provider
        echo it: the key belongs to the gateway, never to its callers."""
        if self._api_key and len(self._api_key) >= 8 and self._api_key.encode() in data:
            return data.replace(self._api_key.encode(), b"[redacted]")
        return data

    def check(self, operation: Operation) -> None:
        if operation not in self.operations:
            served = ", ".join(sorted(self.operations))
            raise UnsupportedOperationError(
                f"provider {self.name!r} ({self.kind}) does not serve {operation!r}; it serves {served}"
            )

    @abc.abstractmethod
    def url(self, operation: Operation, model: str, stream: bool) -> str:
        """The full URL for this operation and model."""

    @abc.abstractmethod
    def auth_headers(self) -> dict[str, str]:
        """Credentials and vendor-required headers."""

    def headers(self, request: UpstreamRequest) -> dict[str, str]:
        """Forwarded client headers, then JSON framing, then this provider's auth (which always wins)."""
        out = {
            name.lower(): value
            for name, value in request.headers.items()
            if name.lower() not in _DROPPED and not name.lower().startswith("x-fiscus-")
        }
        out["content-type"] = "application/json"
        if request.stream:
            out["accept"] = "text/event-stream"
        out.update(self.auth_headers())
        return out

    def stream_reader(self, operation: Operation) -> StreamTranslation | None:
        """What reads this provider's streamed 2xx answer as SSE of its wire format; None where it is SSE already."""
        return None

    def body(self, request: UpstreamRequest, model: str) -> bytes:
        """The body to send for `model`; rewritten only when a fallback changes the model named in it."""
        if model == request.model or not self.model_in_body:
            return request.body
        try:
            data = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return request.body
        if isinstance(data, dict) and "model" in data:
            data["model"] = model
            return orjson.dumps(data)
        return request.body

    # OpenAI and Anthropic name the model in the body; Gemini and Azure in the URL.
    model_in_body: ClassVar[bool] = True
