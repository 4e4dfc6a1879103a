"""The providers that reuse another's wire format at their own paths, with their own auth and additions.

Each route checks what the real service checks (where the key travels, the version it requires), rewrites the
request into the form the shared handler reads (model from the URL, auth in the usual header) and marks it with
its vendor, so the Chat handler can add the vendor's own usage fields (`vendor_usage`).

    POST /chat/completions                                    DeepSeek (its base URL has no /v1)
    POST /openai/v1/chat/completions                          Groq; Bedrock's OpenAI-compatible endpoint
    POST /api/v1/chat/completions                             OpenRouter (usage.cost: x-emulator-cost, or the
                                                              catalogue's price)
    POST /openai/deployments/{deployment}/chat/completions    Azure OpenAI (api-key header, ?api-version=)
    POST /model/{model}/invoke                                Bedrock InvokeModel, Claude's Messages body with
                                                              anthropic_version bedrock-2023-05-31
    POST /model/{model}/invoke-with-response-stream           Bedrock InvokeModelWithResponseStream: the same
                                                              events in AWS event-stream frames
    POST /v1/projects/{p}/locations/{l}/publishers/anthropic/models/{model}:rawPredict | :streamRawPredict
                                                              Vertex Claude, anthropic_version vertex-2023-10-16
    POST /v1/projects/{p}/locations/{l}/publishers/google/models/{model}:generateContent | ...
                                                              Vertex Gemini (Bearer token)
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from fiscus.emulator import anthropic_messages, gemini, openai_chat
from fiscus.emulator.dialects import GEMINI, OPENAI, json_response
from fiscus.emulator.vendor_usage import VENDOR
from fiscus.providers.aws_eventstream import encode
from fiscus.providers.bedrock_stream import MEDIA_TYPE as EVENT_STREAM

_BEDROCK_VERSION = "bedrock-2023-05-31"
_VERTEX_VERSION = "vertex-2023-10-16"


def _rewritten(request: Request, vendor: str, *, headers: dict[str, str], body: bytes | None = None) -> Request:
    scope = dict(request.scope)
    kept = [(k, v) for k, v in scope["headers"] if k.decode().lower() not in headers]
    scope["headers"] = kept + [(k.encode(), v.encode()) for k, v in headers.items()]
    scope[VENDOR] = vendor
    out = Request(scope, request.receive)
    if body is not None:
        out._body = body  # starlette reads a set body instead of the stream
    return out


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    return value[7:].strip() or None if value[:7].lower() == "bearer " else None


def _chat_route(vendor: str):  # type: ignore[no-untyped-def]
    async def route(request: Request) -> Response:
        return await openai_chat.chat_completions(_rewritten(request, vendor, headers={}))

    return route


deepseek_chat = _chat_route("deepseek")
openai_path_chat = _chat_route("groq")
openrouter_chat = _chat_route("openrouter")


async def azure_chat(request: Request) -> Response:
    if not request.query_params.get("api-version"):
        return json_response({"error": {"code": "404", "message": "Resource not found"}}, 404)
    key = request.headers.get("api-key")
    if not key:
        return json_response(
            {"error": {"code": "401", "message": "Access denied due to missing subscription key. Make sure to "
                       "include subscription key when making requests to an API."}},
            401,
        )  # fmt: skip
    body = await _json_body(request)
    if body is None:
        return OPENAI.error(400, "We could not parse the JSON body of your request.")
    body["model"] = request.path_params["deployment"]  # the deployment names the model
    rewritten = _rewritten(request, "azure", headers={"authorization": f"Bearer {key}"}, body=orjson.dumps(body))
    return await openai_chat.chat_completions(rewritten)


async def bedrock_invoke(request: Request) -> Response:
    return await _claude(request, "bedrock", request.path_params["model"], _BEDROCK_VERSION, stream=False)


async def bedrock_invoke_stream(request: Request) -> Response:
    answer = await _claude(request, "bedrock", request.path_params["model"], _BEDROCK_VERSION, stream=True)
    if not isinstance(answer, StreamingResponse):  # refused before streaming: a JSON error
        return answer
    return StreamingResponse(_event_stream(answer.body_iterator), media_type=EVENT_STREAM)


async def _event_stream(sse: AsyncIterable[Any]) -> AsyncIterator[bytes]:
    """Anthropic's SSE events → `chunk` messages of base64 event bytes; the last gains Bedrock's metrics."""
    started, buffer, tokens = time.perf_counter(), b"", {"inputTokenCount": 0, "outputTokenCount": 0}
    first: float | None = None
    async for part in sse:
        buffer += part.encode() if isinstance(part, str) else bytes(part)
        *frames, buffer = buffer.split(b"\n\n")
        for frame in frames:
            data = next((line[5:].strip() for line in frame.split(b"\n") if line.startswith(b"data:")), None)
            if not data:
                continue
            event = orjson.loads(data)
            usage = event.get("message", event).get("usage") or {}
            tokens["inputTokenCount"] += usage.get("input_tokens", 0) if event["type"] == "message_start" else 0
            tokens["outputTokenCount"] = usage.get("output_tokens", tokens["outputTokenCount"])
            first = first if first is not None else time.perf_counter()
            if event["type"] == "message_stop":
                elapsed = int((time.perf_counter() - started) * 1000)
                event["amazon-bedrock-invocationMetrics"] = {
                    **tokens, "invocationLatency": elapsed, "firstByteLatency": int((first - started) * 1000)
                }  # fmt: skip
            chunk = {"bytes": base64.b64encode(orjson.dumps(event)).decode(), "p": "abcdefghij"[: len(frame) % 10]}
            headers = {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
            yield encode(headers, orjson.dumps(chunk))


async def vertex_anthropic(request: Request) -> Response:
    model, _, method = request.path_params["target"].rpartition(":")
    if method not in ("rawPredict", "streamRawPredict"):
        return GEMINI.error(404, f"Method {method} is not found for publisher model {model}.")
    return await _claude(request, "vertex", model, _VERTEX_VERSION, stream=method == "streamRawPredict")


async def vertex_gemini(request: Request) -> Response:
    token = _bearer(request)
    if token is None:
        return GEMINI.error(401, "Request is missing required authentication credential. Expected OAuth 2 access "
                            "token, login cookie or other valid authentication credential.")  # fmt: skip
    return await gemini.model_action(_rewritten(request, "vertex", headers={"x-goog-api-key": token}))


async def _claude(request: Request, vendor: str, model: str, version: str, *, stream: bool) -> Response:
    token = _bearer(request)
    if token is None:
        return _cloud_error(vendor, 403, "Authorization header is missing")
    body = await _json_body(request)
    if body is None:
        return _cloud_error(vendor, 400, "Malformed input request, please reformat your input and try again.")
    if body.get("anthropic_version") != version:
        return _cloud_error(vendor, 400, f"anthropic_version: expected {version!r}")
    if "model" in body:
        return _cloud_error(vendor, 400, "model: Extra inputs are not permitted (the model is named in the URL)")
    body.pop("anthropic_version")
    body["model"] = model
    if stream:
        body["stream"] = True
    elif vendor == "bedrock" and "stream" in body:
        return _cloud_error(vendor, 400, "stream: Extra inputs are not permitted")
    headers = {"x-api-key": token, "anthropic-version": "2023-06-01"}
    return await anthropic_messages.messages(_rewritten(request, vendor, headers=headers, body=orjson.dumps(body)))


def _cloud_error(vendor: str, status: int, message: str) -> Response:
    if vendor == "bedrock":  # Bedrock's own error shape; the kind travels in x-amzn-errortype
        kind = {400: "ValidationException", 403: "AccessDeniedException"}.get(status, "InternalServerException")
        return json_response({"message": message}, status, {"x-amzn-errortype": f"{kind}:http://internal.amazon.com/"})
    return GEMINI.error(status, message)


async def _json_body(request: Request) -> dict[str, Any] | None:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None
