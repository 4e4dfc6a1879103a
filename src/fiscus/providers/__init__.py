"""Upstream provider adapters: the only place fiscus talks to a provider.

`Upstream` forwards `UpstreamRequest`s with the vendor's URL and auth, pooled connections, per-provider
RPM/TPM limiting, budgeted retries with full-jitter backoff and configured fallbacks.
"""

from fiscus.providers.backoff import Backoff, is_retryable, retry_after_s
from fiscus.providers.endpoint import Endpoint
from fiscus.providers.messages import (
    WIRE_OF,
    Attempt,
    Operation,
    ProviderError,
    RateLimitedError,
    UnknownProviderError,
    UnsupportedOperationError,
    UpstreamConnectError,
    UpstreamRequest,
    UpstreamResponse,
    UpstreamTimeoutError,
)
from fiscus.providers.rate_limit import ProviderRateLimiter
from fiscus.providers.registry import ENDPOINT_KINDS, make_endpoint
from fiscus.providers.retry_budget import RetryBudget
from fiscus.providers.upstream import Upstream, UpstreamStream

__all__ = [
    "ENDPOINT_KINDS",
    "WIRE_OF",
    "Attempt",
    "Backoff",
    "Endpoint",
    "Operation",
    "ProviderError",
    "ProviderRateLimiter",
    "RateLimitedError",
    "RetryBudget",
    "UnknownProviderError",
    "UnsupportedOperationError",
    "Upstream",
    "UpstreamConnectError",
    "UpstreamRequest",
    "UpstreamResponse",
    "UpstreamStream",
    "UpstreamTimeoutError",
    "is_retryable",
    "make_endpoint",
    "retry_after_s",
]
