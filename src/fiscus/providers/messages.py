"""What goes to a provider and what comes back, independent of vendor and HTTP client."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from fiscus.errors import FiscusError

# The operations fiscus forwards. Each belongs to one wire format (see `WIRE_OF`).
Operation = Literal["chat.completions", "responses", "messages", "generate_content"]
Wire = Literal["openai", "anthropic", "gemini"]

WIRE_OF: dict[str, Wire] = {
    "chat.completions": "openai",
    "responses": "openai",
    "messages": "anthropic",
    "generate_content": "gemini",
}


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """One call to forward. `body` is the JSON the provider expects (the gateway has parsed it once already);
    `headers` are extra client headers to pass on (e.g. `anthropic-beta`) — credentials among them are
    dropped and replaced by the provider's own. `estimated_tokens` feeds the per-provider TPM limiter."""

    provider: str
    operation: Operation
    model: str
    body: bytes
    stream: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)
    estimated_tokens: int = 0


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    """A whole (non-streamed) answer. `provider`/`model` name who actually served it (a fallback may have);
    `headers` are lower-cased and exclude framing headers (the body is already decoded)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    provider: str
    model: str
    attempts: int = 1
    fallback: bool = False

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


AttemptOutcome = Literal[
    "ok",  # a 2xx answer
    "error",  # a non-retryable answer (e.g. 400), returned as is
    "retry",  # failed; another try follows after `delay_s`
    "gave_up",  # failed and retries are used up: fallbacks (if any) come next
    "budget_exhausted",  # failed; the provider's retry budget allows no retry now
    "rate_limited",  # refused locally by the RPM/TPM limiter before sending
    "skipped",  # a fallback not tried (its wire format differs from the request's)
]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at one provider, reported to the `on_attempt` callback as soon as its outcome is known.
    `retry` is true for the second and later tries sent to the same provider (count these as retries);
    `fallback` when the provider is a fallback of the requested one. `status` is None when no HTTP answer came
    (connection error, or the local limiter refused before sending)."""

    provider: str
    model: str
    number: int  # 0 for the first try at this provider/model
    outcome: AttemptOutcome
    status: int | None = None
    error: str | None = None
    delay_s: float = 0.0
    retry: bool = False
    fallback: bool = False
    elapsed_s: float = 0.0


class ProviderError(FiscusError):
    """A provider could not be reached or used. Messages never include credentials."""


class UnknownProviderError(ProviderError):
    """The request names a provider that is not configured."""


class UnsupportedOperationError(ProviderError):
    """The provider's kind does not serve this operation (e.g. `messages` on an OpenAI provider)."""


class UpstreamConnectError(ProviderError):
    """No HTTP answer: connection refused, DNS failure, connect timeout — after all retries and fallbacks."""


class UpstreamTimeoutError(ProviderError):
    """The provider accepted the request but did not answer within the read timeout (not retried: the
    provider may already be generating, and billing, the answer)."""


class RateLimitedError(ProviderError):
    """fiscus's own per-provider RPM/TPM limiter refused the call; `retry_after_s` says when to try again."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
