"""Model listings: GET /v1/models (OpenAI or Anthropic shape, by the caller's headers), GET /v1beta/models."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fiscus.emulator.dialects import ANTHROPIC, GEMINI, OPENAI, Dialect, json_response
from fiscus.emulator.state import EmulatorState

# Listed when the config does not restrict models; any other name is still served.
DEFAULT_MODELS = (
    "gpt-5.4",
    "gpt-5.4-mini",
    "gpt-4.1",
    "gpt-4o-mini",
    "o4-mini",
    "claude-opus-4-6",
    "claude-sonnet-4-6",
    "claude-haiku-4-5",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
)
_CREATED = 1_700_000_000
_GEMINI_PREFIXES = ("gemini", "gemma")


def _names(state: EmulatorState, dialect: Dialect) -> list[str]:
    names = sorted(state.config.allowed_models) if state.config.allowed_models else list(DEFAULT_MODELS)
    if dialect is GEMINI:
        return [name for name in names if name.startswith(_GEMINI_PREFIXES)]
    if dialect is ANTHROPIC:
        return [name for name in names if name.startswith("claude")]
    return [name for name in names if not name.startswith(("claude", *_GEMINI_PREFIXES))]


def _authorised(request: Request, state: EmulatorState, dialect: Dialect) -> Response | None:
    key = dialect.api_key(request)
    if key is None:
        return dialect.missing_key()
    if state.config.api_keys is not None and key not in state.config.api_keys:
        return dialect.bad_key(key)
    return None


async def list_models(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    anthropic = "anthropic-version" in request.headers or "x-api-key" in request.headers
    dialect: Dialect = ANTHROPIC if anthropic else OPENAI
    refused = _authorised(request, state, dialect)
    if refused is not None:
        return refused
    names = _names(state, dialect)
    if anthropic:
        data = [
            {"type": "model", "id": name, "display_name": name, "created_at": "2025-01-01T00:00:00Z"} for name in names
        ]
        first, last = (names[0], names[-1]) if names else (None, None)
        return json_response({"data": data, "has_more": False, "first_id": first, "last_id": last})
    data = [{"id": name, "object": "model", "created": _CREATED, "owned_by": "openai"} for name in names]
    return json_response({"object": "list", "data": data})


async def list_gemini_models(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    refused = _authorised(request, state, GEMINI)
    if refused is not None:
        return refused
    models = [
        {
            "name": f"models/{name}",
            "displayName": name,
            "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
        }
        for name in _names(state, GEMINI)
    ]
    return json_response({"models": models})
