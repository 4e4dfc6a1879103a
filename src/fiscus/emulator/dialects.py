"""What each provider does off the happy path: where the key travels, how errors and limits look."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson
from starlette.requests import Request
from starlette.responses import Response

from fiscus.emulator.ratelimit import LimitResult


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def retry_after_value(seconds: float) -> str:
    """Whole seconds when whole (as providers send), else the float the SDKs also accept."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:.3f}"


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    if value[:7].lower() != "bearer ":
        return None
    return value[7:].strip() or None


def _go_duration(seconds: float) -> str:
    """OpenAI's reset format: 20ms, 1.5s, 6m0s."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    return f"{int(seconds // 60)}m{int(seconds % 60)}s"


class OpenAIDialect:
    name = "openai"
    _messages: ClassVar[dict[int, tuple[str, str | None, str]]] = {
        400: ("invalid_request_error", None, "Invalid request."),
        401: ("invalid_request_error", None, "Incorrect API key provided."),
        403: ("invalid_request_error", None, "You are not allowed to access this resource."),
        404: ("invalid_request_error", None, "The requested resource does not exist."),
        429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again."),
        500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
        503: ("server_error", None, "The engine is currently overloaded, please try again later."),
    }

    def request_id_headers(self) -> dict[str, str]:
        return {"x-request-id": f"req_{secrets.token_hex(16)}"}

    def api_key(self, request: Request) -> str | None:
        return _bearer(request)

    def error(
        self,
        status: int,
        message: str | None = None,
        *,
        kind: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        default_kind, default_code, default_message = self._messages.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None, f"Error {status}.")
        )
        body = {
            "error": {
                "message": message or default_message,
                "type": kind or default_kind,
                "param": param,
                "code": code or default_code,
            }
        }
        return json_response(body, status, {**self.request_id_headers(), **(headers or {})})

    def missing_key(self) -> Response:
        return self.error(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )

    def bad_key(self, key: str) -> Response:
        shown = f"{key[:3]}{'*' * max(0, len(key) - 7)}{key[-4:]}" if len(key) > 8 else key
        return self.error(401, f"Incorrect API key provided: {shown}.", code="invalid_api_key")

    def model_not_found(self, model: str) -> Response:
        message = f"The model `{model}` does not exist or you do not have access to it."
        return self.error(404, message, code="model_not_found")

    def limit_headers(self, result: LimitResult) -> dict[str, str]:
        headers: dict[str, str] = {}
        for kind, state in (("requests", result.requests), ("tokens", result.tokens)):
            if state is not None:
                headers[f"x-ratelimit-limit-{kind}"] = str(state.limit)
                headers[f"x-ratelimit-remaining-{kind}"] = str(state.remaining)
                headers[f"x-ratelimit-reset-{kind}"] = _go_duration(state.reset_s)
        return headers

    def rate_limited(self, result: LimitResult, retry_after_s: float) -> Response:
        kind = result.exceeded or "requests"
        state = result.requests if kind == "requests" else result.tokens
        limit = f"Limit {state.limit}, " if state else ""
        message = (
            f"Rate limit reached on {kind} per min: {limit}Please try again in {retry_after_value(retry_after_s)}s."
        )
        headers = {**self.limit_headers(result), "retry-after": retry_after_value(retry_after_s)}
        return self.error(429, message, kind=kind, code="rate_limit_exceeded", headers=headers)


class AnthropicDialect:
    name = "anthropic"
    _types: ClassVar[dict[int, tuple[str, str]]] = {
        400: ("invalid_request_error", "Invalid request."),
        401: ("authentication_error", "invalid x-api-key"),
        402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
        403: ("permission_error", "Your API key does not have permission to use the specified resource."),
        404: ("not_found_error", "Not found."),
        413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
        429: ("rate_limit_error", "This request would exceed the rate limit for your organization."),
        500: ("api_error", "Internal server error"),
        504: ("timeout_error", "Request timed out."),
        529: ("overloaded_error", "Overloaded"),
    }

    def request_id_headers(self) -> dict[str, str]:
        return {"request-id": f"req_{secrets.token_hex(12)}"}

    def api_key(self, request: Request) -> str | None:
        # OAuth-style bearer tokens are accepted too, as the real API does.
        return request.headers.get("x-api-key") or _bearer(request)

    def error(
        self, status: int, message: str | None = None, *, headers: dict[str, str] | None = None, **_: Any
    ) -> Response:
        kind, default_message = self._types.get(
            status, ("api_error" if status >= 500 else "invalid_request_error", f"Error {status}.")
        )
        merged = {**self.request_id_headers(), **(headers or {})}
        body = {
            "type": "error",
            "error": {"type": kind, "message": message or default_message},
            "request_id": merged["request-id"],
        }
        return json_response(body, status, merged)

    def missing_key(self) -> Response:
        return self.error(401, "x-api-key header is required")

    def bad_key(self, key: str) -> Response:
        return self.error(401, "invalid x-api-key")

    def model_not_found(self, model: str) -> Response:
        return self.error(404, f"model: {model}")

    def limit_headers(self, result: LimitResult) -> dict[str, str]:
        headers: dict[str, str] = {}
        for kind, state in (("requests", result.requests), ("tokens", result.tokens)):
            if state is not None:
                reset = datetime.fromtimestamp(time.time() + state.reset_s, UTC)
                headers[f"anthropic-ratelimit-{kind}-limit"] = str(state.limit)
                headers[f"anthropic-ratelimit-{kind}-remaining"] = str(state.remaining)
                headers[f"anthropic-ratelimit-{kind}-reset"] = reset.strftime("%Y-%m-%dT%H:%M:%SZ")
        return headers

    def rate_limited(self, result: LimitResult, retry_after_s: float) -> Response:
        headers = {**self.limit_headers(result), "retry-after": retry_after_value(retry_after_s)}
        return self.error(429, None, headers=headers)


class GeminiDialect:
    name = "gemini"
    _statuses: ClassVar[dict[int, tuple[str, str]]] = {
        400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
        401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
        403: ("PERMISSION_DENIED", "The caller does not have permission."),
        404: ("NOT_FOUND", "Requested entity was not found."),
        429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
        500: ("INTERNAL", "An internal error has occurred. Please retry."),
        503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
        504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
    }

    def request_id_headers(self) -> dict[str, str]:
        return {}

    def api_key(self, request: Request) -> str | None:
        return request.headers.get("x-goog-api-key") or request.query_params.get("key") or None

    def error(
        self,
        status: int,
        message: str | None = None,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **_: Any,
    ) -> Response:
        kind, default_message = self._statuses.get(
            status, ("UNAVAILABLE" if status >= 500 else "INVALID_ARGUMENT", f"Error {status}.")
        )
        error: dict[str, Any] = {"code": status, "message": message or default_message, "status": kind}
        if details:
            error["details"] = details
        return json_response({"error": error}, status, headers)

    def missing_key(self) -> Response:
        return self.error(
            403,
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API.",
        )

    def bad_key(self, key: str) -> Response:
        info = {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        }
        return self.error(400, "API key not valid. Please pass a valid API key.", details=[info])

    def model_not_found(self, model: str) -> Response:
        return self.error(
            404, f"models/{model} is not found for API version v1beta, or is not supported for generateContent."
        )

    def limit_headers(self, result: LimitResult) -> dict[str, str]:
        return {}

    def rate_limited(self, result: LimitResult, retry_after_s: float) -> Response:
        retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after_s:g}s"}
        return self.error(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            details=[retry],
            headers={"retry-after": retry_after_value(retry_after_s)},
        )


Dialect = OpenAIDialect | AnthropicDialect | GeminiDialect
OPENAI = OpenAIDialect()
ANTHROPIC = AnthropicDialect()
GEMINI = GeminiDialect()
