"""SDK error classification, and the outage answer.

A failed call feeds its provider/model's error-rate breaker only when the provider failed it: a 5xx or 529, a
timeout, a connection error. A 4xx the request caused (bad input, unknown model, auth, a rate limit) says nothing
about the provider's health and opens nothing, as on the gateway.

While that breaker is open the provider is treated as down: the caller gets what an outage looks like from the
provider's own SDK — its `InternalServerError` (status 503, `retry-after` the breaker's reopen time), the same
exception the gateway's 503 raises in that SDK — so retries and failover written for outages work unchanged.
"""

from __future__ import annotations

import importlib
from typing import Any

import orjson

_TRANSPORT_FAILURES = frozenset(
    {
        "APIConnectionError",  # openai / anthropic, and their APITimeoutError
        "APITimeoutError",
        "TimeoutException",  # httpx: connect, read, write and pool timeouts
        "ConnectError",
        "RemoteProtocolError",
        "ReadError",
        "TimeoutError",
    }
)
PROVIDER_UNAVAILABLE = "provider_unavailable"


def provider_failure(error: BaseException | None) -> bool:
    """Whether `error` is the provider's failure (5xx, 529, timeout, connection) rather than the request's."""
    if error is None:
        return False
    status = getattr(error, "status_code", None)
    if isinstance(status, int):
        return status >= 500
    return any(cls.__name__ in _TRANSPORT_FAILURES for cls in type(error).__mro__)


def unavailable(provider: str, message: str, retry_after: int | None) -> BaseException | None:
    """The provider SDK's own 503 exception for an open error-rate breaker (None for a provider without one)."""
    sdk = {"openai": "openai", "anthropic": "anthropic"}.get(provider)
    if sdk is None:
        return None
    module = importlib.import_module(sdk)
    http: Any = getattr(importlib.import_module(f"{sdk}._base_client"), "httpx2", None)
    http = http or importlib.import_module("httpx")
    headers = {"content-type": "application/json", "x-fiscus-guard": "breaker_open"}
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    if sdk == "anthropic":
        body: dict[str, Any] = {"type": "error", "error": {"type": "api_error", "message": message}}
        cls = getattr(module, "ServiceUnavailableError", module.InternalServerError)
    else:
        body = {"error": {"message": message, "type": "server_error", "param": None, "code": PROVIDER_UNAVAILABLE}}
        cls = module.InternalServerError
    request = http.Request("POST", "http://fiscus.invalid/provider-unavailable")
    response = http.Response(503, headers=headers, content=orjson.dumps(body), request=request)
    error: BaseException = cls(f"Error code: 503 - {body}", response=response, body=body)
    return error
