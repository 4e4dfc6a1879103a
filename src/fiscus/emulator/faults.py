"""Injected faults: scripted and random error statuses, and the latency a provider adds."""

from __future__ import annotations

import asyncio

from starlette.responses import Response

from fiscus.emulator.dialects import Dialect
from fiscus.emulator.ratelimit import LimitResult
from fiscus.emulator.state import EmulatorState
from fiscus.emulator.steering import Steering

PASS = 200  # a script entry that lets the call through


def injected_status(state: EmulatorState, steer: Steering) -> int | None:
    """The error status this call must fail with, if any. Scripts advance once per call."""
    index = state.calls
    state.calls += 1
    script = state.config.error_sequence
    if index < len(script) and script[index] != PASS:
        return script[index]
    if steer.error is not None and steer.error != PASS:
        return steer.error
    if steer.error_sequence:
        position = state.sequences[steer.sequence_key]
        state.sequences[steer.sequence_key] += 1
        if position < len(steer.error_sequence) and steer.error_sequence[position] != PASS:
            return steer.error_sequence[position]
    if steer.error_rate > 0 and state.rng.random() < steer.error_rate:
        return steer.error_rate_status
    return None


def injected_error(dialect: Dialect, status: int, steer: Steering) -> Response:
    """The provider's own body for `status`; a 429 carries retry-after as real limits do."""
    if status == 429:
        refused = LimitResult(False, "requests", steer.retry_after_s, None, None)
        return dialect.rate_limited(refused, steer.retry_after_s)
    return dialect.error(status)


async def sleep_ms(milliseconds: float) -> None:
    if milliseconds > 0:
        await asyncio.sleep(milliseconds / 1000)
