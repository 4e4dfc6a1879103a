"""The shared front of every provider endpoint: count, authenticate, parse, steer, inject faults, limit.

Order follows the real services: a bad key fails before a bad body, and a rate limit before generation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from fiscus.emulator.dialects import ANTHROPIC, Dialect
from fiscus.emulator.faults import injected_error, injected_status, sleep_ms
from fiscus.emulator.state import EmulatorState
from fiscus.emulator.steering import Steering, SteeringError, resolve
from fiscus.emulator.tokens import set_chars_per_token


@dataclass(slots=True)
class Call:
    """An admitted request: its body, key and steering, plus headers every response to it carries."""

    state: EmulatorState
    dialect: Dialect
    body: dict[str, Any]
    key: str
    model: str
    steer: Steering
    headers: dict[str, str] = field(default_factory=dict)

    def charge(self, tokens: int) -> Response | None:
        """Take one request and `tokens` from the key's limits; the 429 to send when they are spent."""
        steer = self.steer
        if not steer.rpm_limit and not steer.tpm_limit:
            return None
        result = self.state.limiter.check(self.key, steer.rpm_limit, steer.tpm_limit, tokens)
        if not result.allowed:
            return self.dialect.rate_limited(result, max(1, math.ceil(result.retry_after_s)))
        self.headers.update(self.dialect.limit_headers(result))
        return None

    def error(self, status: int, message: str, **extra: Any) -> Response:
        return self.dialect.error(status, message, headers=self.headers, **extra)


def _precheck(dialect: Dialect, request: Request) -> Response | None:
    if dialect is ANTHROPIC and not request.headers.get("anthropic-version"):
        return dialect.error(400, "anthropic-version: header is required")
    return None


async def admit(
    request: Request, state: EmulatorState, dialect: Dialect, endpoint: str, model: str | None = None
) -> Call | Response:
    """Run the checks shared by all providers; a Response means the call ends here."""
    stats = state.stats
    stats.requests += 1
    stats.by_endpoint[endpoint] += 1
    key = dialect.api_key(request)
    if key is None:
        return dialect.missing_key()
    if state.config.api_keys is not None and key not in state.config.api_keys:
        return dialect.bad_key(key)
    refused = _precheck(dialect, request)
    if refused is not None:
        return refused
    try:
        steer = resolve(state.config, request.headers.raw)
    except SteeringError as exc:
        return dialect.error(400, str(exc))
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return dialect.error(400, "We could not parse the JSON body of your request.")
    if not isinstance(body, dict):
        return dialect.error(400, "The request body must be a JSON object.")
    model = model or body.get("model")
    if not model or not isinstance(model, str):
        return dialect.error(400, "model: Field required", param="model")
    model = model.removeprefix("models/")  # Gemini bodies name models as resources
    allowed = state.config.allowed_models
    if allowed is not None and model not in allowed:
        return dialect.model_not_found(model)
    status = injected_status(state, steer)
    if status is not None:
        await sleep_ms(steer.latency_ms)
        return injected_error(dialect, status, steer)
    config = state.config
    set_chars_per_token(steer.chars_per_token or config.chars_per_token_models.get(model, config.chars_per_token))
    return Call(state, dialect, body, key, model, steer, dialect.request_id_headers())
