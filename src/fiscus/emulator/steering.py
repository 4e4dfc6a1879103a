"""Per-request settings: the instance config, overridden by any `x-emulator-*` request headers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fiscus.emulator.config import EmulatorConfig

PREFIX = b"x-emulator-"


@dataclass(slots=True)
class Steering:
    latency_ms: float
    token_latency_ms: float
    error: int | None
    error_rate: float
    error_rate_status: int
    error_sequence: tuple[int, ...]
    sequence_key: str
    retry_after_s: float
    stream_cut_after: int | None
    rpm_limit: int | None
    tpm_limit: int | None
    reply_tokens: int
    output_tokens: int | None
    reasoning_tokens: int
    tool_call: str | None  # a tool name, "auto" (first tool) or None (let the request decide)
    cached_tokens: int | None
    cost: Decimal | None = None  # OpenRouter's usage.cost for this call, in USD
    chars_per_token: int | None = None  # how this call's tokens are counted (None: the model's or the default)


class SteeringError(ValueError):
    """An `x-emulator-*` header has a value the emulator cannot use."""


def _chars(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 16:
        raise ValueError(text)
    return value


def _usd(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except ArithmeticError:
        raise ValueError(text) from None
    if not value.is_finite() or value < 0:
        raise ValueError(text)
    return value


def _statuses(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.replace(" ", "").split(",") if part)


# header suffix -> (Steering field, parser)
_HEADERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "latency-ms": ("latency_ms", float),
    "token-latency-ms": ("token_latency_ms", float),
    "error": ("error", int),
    "error-rate": ("error_rate", float),
    "error-rate-status": ("error_rate_status", int),
    "error-sequence": ("error_sequence", _statuses),
    "sequence-key": ("sequence_key", str),
    "retry-after": ("retry_after_s", float),
    "stream-cut": ("stream_cut_after", int),
    "rpm": ("rpm_limit", int),
    "tpm": ("tpm_limit", int),
    "reply-tokens": ("reply_tokens", int),
    "output-tokens": ("output_tokens", int),
    "reasoning-tokens": ("reasoning_tokens", int),
    "tool-call": ("tool_call", str),
    "cached-tokens": ("cached_tokens", int),
    "cost": ("cost", _usd),
    "chars-per-token": ("chars_per_token", _chars),
}


def resolve(config: EmulatorConfig, raw_headers: list[tuple[bytes, bytes]]) -> Steering:
    """Merge the config with the request's `x-emulator-*` headers; raise SteeringError on a bad value."""
    steer = Steering(
        latency_ms=config.latency_ms,
        token_latency_ms=config.token_latency_ms,
        error=None,
        error_rate=config.error_rate,
        error_rate_status=config.error_rate_status,
        error_sequence=(),
        sequence_key="",
        retry_after_s=config.retry_after_s,
        stream_cut_after=config.stream_cut_after,
        rpm_limit=config.rpm_limit,
        tpm_limit=config.tpm_limit,
        reply_tokens=config.reply_tokens,
        output_tokens=config.output_tokens,
        reasoning_tokens=config.reasoning_tokens,
        tool_call="auto" if config.tool_calls else None,
        cached_tokens=None,
    )
    for name, value in raw_headers:
        if not name.startswith(PREFIX):
            continue
        suffix = name[len(PREFIX) :].decode("latin-1")
        spec = _HEADERS.get(suffix)
        if spec is None:
            raise SteeringError(f"unknown header x-emulator-{suffix}")
        attr, parse = spec
        text = value.decode("latin-1").strip()
        if suffix == "tool-call" and text.lower() == "none":
            steer.tool_call = None
            continue
        try:
            setattr(steer, attr, parse(text))
        except ValueError:
            raise SteeringError(f"x-emulator-{suffix}: cannot use value {text!r}") from None
    if steer.error_sequence and not steer.sequence_key:
        steer.sequence_key = ",".join(map(str, steer.error_sequence))
    return steer
