"""The emulator's ASGI app: OpenAI, Anthropic and Gemini endpoints on their real paths and wire formats.

Endpoints
    POST /v1/chat/completions                      OpenAI Chat Completions (JSON, SSE)
    POST /v1/responses                             OpenAI Responses (JSON, SSE)
    GET  /v1/models                                OpenAI list, or Anthropic's when x-api-key is sent
    POST /v1/messages, /v1/messages/count_tokens   Anthropic Messages (JSON, SSE)
    POST /v1/files, GET /v1/files/{id}[/content]   OpenAI Files (multipart upload, purpose=batch)
    POST /v1/batches, GET /v1/batches[/{id}], POST /v1/batches/{id}/cancel     OpenAI Batch
    POST /v1/messages/batches, GET /v1/messages/batches[/{id}[/results]], POST .../{id}/cancel
                                                   Anthropic Message Batches (see emulator/batch_jobs.py)
    POST /v1beta/models/{model}:generateContent    Gemini; also :streamGenerateContent, :countTokens
    POST /v1beta/cachedContents                    Gemini explicit cache, for `cachedContent` names
    POST vendor paths (DeepSeek, Groq, OpenRouter, Azure OpenAI, Bedrock, Vertex)   see emulator/vendors.py
    GET  /healthz                                  liveness
    GET  /_emulator/stats, POST /_emulator/reset   counters of what reached the providers; reset all

Steering headers (each overrides the EmulatorConfig field of the same meaning, for one request)
    x-emulator-latency-ms: 250           delay before the response starts
    x-emulator-token-latency-ms: 5       delay per output token (stream pacing; bodies wait the total)
    x-emulator-error: 529                fail this request with the provider's error for that status
    x-emulator-error-rate: 0.1           fail this fraction of requests (seeded) ...
                                         ... with x-emulator-error-rate-status: 500 (default 500)
    x-emulator-error-sequence: 429,429   calls carrying the same sequence walk it: fail, fail, then pass
                                         (200 in the list passes); x-emulator-sequence-key: k scopes
                                         the position, by default the sequence text itself
    x-emulator-retry-after: 1            retry-after seconds on injected 429s
    x-emulator-stream-cut: 3             drop the connection after 3 content deltas, before usage
    x-emulator-rpm: 60, x-emulator-tpm: 10000   per-key limits -> 429 with retry-after and
                                         x-ratelimit-* (OpenAI) / anthropic-ratelimit-* headers
    x-emulator-reply-tokens: 40          visible length of a free answer
    x-emulator-output-tokens: 100        reported output total, reasoning included
    x-emulator-reasoning-tokens: 64      hidden reasoning (OpenAI reasoning_tokens, Gemini
                                         thoughtsTokenCount, Anthropic thinking when enabled)
    x-emulator-tool-call: NAME | auto | none   answer with a call to that tool (auto: the first)
    x-emulator-cached-tokens: 2048       size of a Gemini cachedContent this instance did not create
    x-emulator-batch-delay-ms: 300       on a batch's create call: it completes this long after (on the clock)
    x-emulator-batch-expire: 2           on a batch's create call: its last 2 requests expire unrun
    x-emulator-batch-run-before-cancel: 2   on a batch's create call: cancelled before it completes, its
                                         first 2 requests have run (their results kept), the rest canceled
    x-emulator-cost: 0.0042              OpenRouter's usage.cost for the call (default: the catalogue's price)
    x-emulator-chars-per-token: 1        count this call's tokens at 1 character each (CJK, base64: what a
                                         real tokenizer does); EmulatorConfig.chars_per_token_models per model

A last user message containing `[[tool:NAME]]` also makes the model call the offered tool NAME.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from fiscus.emulator import (
    anthropic_messages,
    batches_anthropic,
    batches_openai,
    gemini,
    openai_chat,
    openai_responses,
    vendors,
)
from fiscus.emulator.config import EmulatorConfig
from fiscus.emulator.dialects import ANTHROPIC, GEMINI, OPENAI, Dialect, json_response
from fiscus.emulator.models import list_gemini_models, list_models
from fiscus.emulator.sse import quiet_stream_cuts
from fiscus.emulator.state import EmulatorState

Endpoint = Callable[[Request], Awaitable[Response]]


def _provider(handler: Endpoint, dialect: Dialect) -> Endpoint:
    """Count each response's status, and answer bodies of a shape the handler cannot read with the
    provider's 400, as the real schema validation would, instead of a crash."""

    async def endpoint(request: Request) -> Response:
        try:
            response = await handler(request)
        except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
            response = dialect.error(400, f"Invalid request body: {exc}")
        request.app.state.emulator.stats.by_status[response.status_code] += 1
        return response

    return endpoint


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def stats(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    return json_response({**state.stats.as_dict(), "prompt_cache_entries": len(state.prompt_cache)})


async def reset(request: Request) -> Response:
    request.app.state.emulator.reset()
    return json_response({"reset": True})


async def _unmatched(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods answer in the format of the provider the caller speaks to."""
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    message = f"Invalid URL ({request.method} {request.url.path})"
    if request.url.path.startswith("/v1beta/"):
        return GEMINI.error(status, message)
    if "anthropic-version" in request.headers or "x-api-key" in request.headers:
        return ANTHROPIC.error(status, message)
    return OPENAI.error(status, message)


def _batch_routes() -> list[Route]:
    get, post = ["GET"], ["POST"]
    oai, claude = batches_openai, batches_anthropic
    return [
        Route("/v1/files", _provider(oai.create_file, OPENAI), methods=post),
        Route("/v1/files/{file_id}", _provider(oai.retrieve_file, OPENAI), methods=get),
        Route("/v1/files/{file_id}/content", _provider(oai.file_content, OPENAI), methods=get),
        Route("/v1/batches", _provider(oai.create_batch, OPENAI), methods=post),
        Route("/v1/batches", _provider(oai.list_batches, OPENAI), methods=get),
        Route("/v1/batches/{batch_id}", _provider(oai.retrieve_batch, OPENAI), methods=get),
        Route("/v1/batches/{batch_id}/cancel", _provider(oai.cancel_batch, OPENAI), methods=post),
        Route("/v1/messages/batches", _provider(claude.create, ANTHROPIC), methods=post),
        Route("/v1/messages/batches", _provider(claude.list_batches, ANTHROPIC), methods=get),
        Route("/v1/messages/batches/{batch_id}", _provider(claude.retrieve, ANTHROPIC), methods=get),
        Route("/v1/messages/batches/{batch_id}/results", _provider(claude.results, ANTHROPIC), methods=get),
        Route("/v1/messages/batches/{batch_id}/cancel", _provider(claude.cancel, ANTHROPIC), methods=post),
    ]


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    """Build one emulator; its counters, caches and limits live as long as the returned app."""
    config = config or EmulatorConfig()
    post = ["POST"]
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/_emulator/stats", stats, methods=["GET"]),
        Route("/_emulator/reset", reset, methods=post),
        Route("/v1/chat/completions", _provider(openai_chat.chat_completions, OPENAI), methods=post),
        Route("/v1/responses", _provider(openai_responses.responses, OPENAI), methods=post),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/messages", _provider(anthropic_messages.messages, ANTHROPIC), methods=post),
        Route("/v1/messages/count_tokens", _provider(anthropic_messages.count_tokens, ANTHROPIC), methods=post),
        *_batch_routes(),
        Route("/v1beta/models", list_gemini_models, methods=["GET"]),
        Route("/v1beta/models/{target:path}", _provider(gemini.model_action, GEMINI), methods=post),
        Route("/v1beta/cachedContents", _provider(gemini.create_cached_content, GEMINI), methods=post),
        # Vendors reusing those formats at their own paths (see emulator/vendors.py).
        Route("/chat/completions", _provider(vendors.deepseek_chat, OPENAI), methods=post),
        Route("/openai/v1/chat/completions", _provider(vendors.openai_path_chat, OPENAI), methods=post),
        Route("/api/v1/chat/completions", _provider(vendors.openrouter_chat, OPENAI), methods=post),
        Route("/openai/deployments/{deployment}/chat/completions", _provider(vendors.azure_chat, OPENAI), methods=post),
        Route("/model/{model:path}/invoke", _provider(vendors.bedrock_invoke, ANTHROPIC), methods=post),
        Route(
            "/model/{model:path}/invoke-with-response-stream",
            _provider(vendors.bedrock_invoke_stream, ANTHROPIC),
            methods=post,
        ),
        Route(
            "/v1/projects/{project}/locations/{location}/publishers/anthropic/models/{target:path}",
            _provider(vendors.vertex_anthropic, ANTHROPIC),
            methods=post,
        ),
        Route(
            "/v1/projects/{project}/locations/{location}/publishers/google/models/{target:path}",
            _provider(vendors.vertex_gemini, GEMINI),
            methods=post,
        ),
    ]
    app = Starlette(routes=routes, exception_handlers={404: _unmatched, 405: _unmatched})
    app.state.emulator = EmulatorState(config)
    quiet_stream_cuts()
    return app
