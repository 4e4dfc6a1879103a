"""What the gateway answers when no model answered, one rule per situation (README: "Every situation, one answer").

- An upstream outage (the provider timed out, could not be reached, answered 5xx or 529, or a model's error-rate
  breaker is open because of such failures) is an error in the client's own protocol, never a 200: 502 for a bad
  upstream answer or connection, 503 when the provider is unavailable (its breaker open, or it said so), 529 to
  Anthropic clients when the provider said overloaded, 504 on a timeout — always with `retry-after` (the
  breaker's reopen time, the provider's own value, else `OUTAGE_RETRY_S`).
- A refusal (budget exhausted, session ceiling, spend-rate breaker, loop) follows the policy's action: `block` is
  a 429 with `retry-after` (when a reset or reopen time exists) and a machine-readable `code`; `partial` is the
  honest partial answer of `fiscus.shaping.partial`, marked by `x-fiscus-partial` and the body's `fiscus` object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from fiscus.gateway.protocol import Protocol, error_body
from fiscus.gateway.responses import JSON, RawResponse
from fiscus.providers import ProviderError, RateLimitedError, UpstreamTimeoutError
from fiscus.providers.messages import UnknownProviderError, UnsupportedOperationError, UpstreamConnectError

OUTAGE_RETRY_S = 5  # retry-after of an outage when neither the provider nor a breaker says when
LONG_WAIT_S = 60  # past this the SDKs' own retries cannot outwait the refusal: x-should-retry: false
PROVIDER_UNAVAILABLE = "provider_unavailable"
PROVIDER_OVERLOADED = "provider_overloaded"
UPSTREAM_ERROR = "upstream_error"
UPSTREAM_TIMEOUT = "upstream_timeout"


@dataclass(frozen=True, slots=True)
class Outage:
    """How one upstream failure is answered: `status`, `retry_after` seconds, `reason` (the metrics label:
    timeout | connection | server_error | unavailable | overloaded | breaker_open | rate_limited)."""

    status: int
    reason: str
    message: str
    retry_after: int
    code: str | None = None


def seconds_until(when: datetime | None) -> int | None:
    """Whole seconds (at least 1) from now until `when`; None when unknown."""
    if when is None:
        return None
    return max(1, math.ceil((when - datetime.now(UTC)).total_seconds()))


def outage_of_error(exc: ProviderError) -> Outage:
    """The answer to a call that got no usable answer from the provider (raised by the upstream client)."""
    if isinstance(exc, RateLimitedError):  # fiscus's own per-provider RPM/TPM limiter
        wait = max(1, math.ceil(exc.retry_after_s))
        return Outage(429, "rate_limited", str(exc), wait, "rate_limit_exceeded")
    if isinstance(exc, UpstreamTimeoutError):
        return Outage(504, "timeout", f"upstream provider timed out: {exc}", OUTAGE_RETRY_S, UPSTREAM_TIMEOUT)
    if isinstance(exc, (UnknownProviderError, UnsupportedOperationError)):  # the gateway's set-up, not an outage
        return Outage(502, "unsupported", f"upstream provider failed: {exc}", OUTAGE_RETRY_S, UPSTREAM_ERROR)
    reason = "connection" if isinstance(exc, UpstreamConnectError) else "bad_answer"
    return Outage(502, reason, f"upstream provider failed: {exc}", OUTAGE_RETRY_S, UPSTREAM_ERROR)


def outage_of_status(protocol: Protocol, status: int, headers: dict[str, str]) -> Outage | None:
    """The answer to a provider's error status: None for a 4xx the request caused (relayed as it is)."""
    wait = _retry_after(headers.get("retry-after"))
    if status == 429:
        return Outage(429, "rate_limited", "upstream provider rate limited the call", wait or 1, "rate_limit_exceeded")
    if status < 500:
        return None
    wait = wait or OUTAGE_RETRY_S
    if status == 529:  # Anthropic's "overloaded": its own status for Anthropic clients, 503 for the others
        answer = 529 if protocol.anthropic else 503
        return Outage(answer, "overloaded", "upstream provider is overloaded", wait, PROVIDER_OVERLOADED)
    if status == 503:
        return Outage(503, "unavailable", "upstream provider is unavailable", wait, PROVIDER_UNAVAILABLE)
    if status == 504:
        return Outage(504, "timeout", "upstream provider timed out", wait, UPSTREAM_TIMEOUT)
    return Outage(502, "server_error", f"upstream provider answered {status}", wait, UPSTREAM_ERROR)


def outage_of_breaker(message: str, retry_after: int | None) -> Outage:
    """A model whose error-rate breaker is open: the provider is failing, so the call is not sent."""
    text = f"upstream provider unavailable ({message}); no model was called"
    return Outage(503, "breaker_open", text, retry_after or OUTAGE_RETRY_S, PROVIDER_UNAVAILABLE)


def outage_response(
    protocol: Protocol, outage: Outage, out: dict[str, str], upstream: bytes | None = None, media: str = JSON
) -> RawResponse:
    """The outage as an error in the client's protocol. The provider's own error body is relayed when it is one
    in that protocol (its detail kept); otherwise one is written."""
    headers = out | {"retry-after": str(outage.retry_after)}
    if upstream is not None and _is_error_body(protocol, upstream):
        return RawResponse(upstream, outage.status, headers, media=media)
    message = f"{outage.message}; retry after {outage.retry_after}s"
    return RawResponse(error_body(protocol, outage.status, message, code=outage.code), outage.status, headers)


def refusal_response(
    protocol: Protocol, *, code: str, message: str, retry_after: int | None, out: dict[str, str]
) -> RawResponse:
    """A `block` refusal: 429 in the client's protocol with the machine-readable `code` and, when known,
    `retry-after` (a budget's reset, a breaker's reopen time; a loop has none: it does not clear by waiting)."""
    headers = dict(out)
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
        message = f"{message}; retry after {retry_after}s"
    if retry_after is None or retry_after > LONG_WAIT_S:
        headers["x-should-retry"] = "false"
    kind = "insufficient_quota" if not protocol.anthropic and code != "rate_limit_exceeded" else None
    return RawResponse(error_body(protocol, 429, message, code=code, kind=kind), 429, headers)


def _retry_after(value: str | None) -> int | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:  # an HTTP date: not worth parsing for a hint
        return None
    return max(1, math.ceil(seconds)) if math.isfinite(seconds) else None


def _is_error_body(protocol: Protocol, body: bytes) -> bool:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(parsed, dict) or not isinstance(parsed.get("error"), dict):
        return False
    return parsed.get("type") == "error" if protocol.anthropic else "type" not in parsed
