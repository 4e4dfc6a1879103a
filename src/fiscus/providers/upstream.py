"""`Upstream`: the one door to the providers. Picks the endpoint, keeps under its rate limits, retries within
a budget, falls back to other providers, and hands back whole answers or live streams."""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

from fiscus.config import FiscusConfig, ProviderConfig
from fiscus.errors import ConfigError
from fiscus.providers.backoff import Backoff, is_retryable, retry_after_s
from fiscus.providers.dial import ProxySettings, tls_context
from fiscus.providers.endpoint import Endpoint
from fiscus.providers.messages import (
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
from fiscus.providers.registry import make_endpoint
from fiscus.providers.retry_budget import RetryBudget
from fiscus.providers.translate import StreamTranslation, Translation, Untranslatable, translation
from fiscus.providers.transport import (
    BrokenAnswer,
    ConnectFailed,
    ReadTimedOut,
    StreamBody,
    Timeouts,
    Transport,
    TransportError,
)

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Served:
    """What `_open` found: an open 2xx answer (`body is None`) or a finished error answer (`body` read)."""

    answer: StreamBody | TranslatedBody
    body: bytes | None
    provider: str
    model: str
    attempts: int
    fallback: bool

    def translate(self, translated: Translation, stream: bool) -> None:
        """Served in the other wire format: hand it on in the client's."""
        if self.body is not None:
            self.body = translated.error(self.answer.status, self.body)
        else:
            self.answer = TranslatedBody(self.answer, translated.response, translated.stream() if stream else None)


class TranslatedBody:
    """A 2xx answer in the provider's format read as the client's: a whole answer translated once read, a stream
    event by event as it arrives."""

    def __init__(
        self,
        answer: StreamBody | TranslatedBody,
        whole: Callable[[bytes], bytes] | None,
        stream: StreamTranslation | None,
    ) -> None:
        self._answer = answer
        self._whole = whole
        self._stream = stream
        self._done = False
        self.status = answer.status
        self.headers = {k: v for k, v in answer.headers.items() if k != "content-length"}
        if stream is not None:
            self.headers["content-type"] = "text/event-stream"

    async def read_chunk(self) -> bytes:
        while not self._done:
            if self._stream is None:
                self._done = True
                body = await self._answer.read()
                return self._whole(body) if self._whole is not None else body
            chunk = await self._answer.read_chunk()
            if not chunk:
                self._done = True
                return self._stream.close()
            out = self._stream.feed(chunk)
            if out:
                return out
        return b""

    async def read(self) -> bytes:
        parts = []
        while chunk := await self.read_chunk():
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        self._answer.close()


class UpstreamStream:
    """A streamed answer: `status`/`headers` and who served it are known before the first byte; iterate for the
    raw bytes as they arrive. A failed call (non-2xx after retries) iterates its error body once."""

    def __init__(self, served: _Served) -> None:
        self._served = served
        self.status = served.answer.status
        self.headers = served.answer.headers
        self.provider = served.provider
        self.model = served.model
        self.attempts = served.attempts
        self.fallback = served.fallback

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    async def read_chunk(self) -> bytes:
        """The next raw bytes as soon as any have arrived; b"" at the end. (Iterating does the same, one async
        generator frame dearer per chunk.)"""
        served = self._served
        if served.body is not None:
            body, served.body = served.body, b""
            return body
        try:
            return await served.answer.read_chunk()
        except ReadTimedOut as exc:
            raise UpstreamTimeoutError(f"provider {self.provider!r} stalled mid-stream ({exc})") from None
        except BrokenAnswer as exc:
            raise ProviderError(f"provider {self.provider!r} broke the stream off ({exc})") from None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while chunk := await self.read_chunk():
            yield chunk


class Upstream:
    """Configured providers behind one pool. Inject `clock`, `sleep` and `rng` to test timing without waiting.

    `on_attempt` is called (synchronously) once per try with an `Attempt`, so callers can count retries
    against budgets and metrics."""

    def __init__(
        self,
        providers: Mapping[str, ProviderConfig],
        *,
        env: Mapping[str, str] | None = None,
        retry_budget_ratio: float = 0.1,
        retry_budget_window_s: float = 10.0,
        retry_budget_min: int = 2,
        rate_limit_headroom: float = 0.15,
        limiter_max_wait_s: float = 2.0,
        backoff: Backoff | None = None,
        on_attempt: Callable[[Attempt], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        transport: Transport | None = None,
    ) -> None:
        env = os.environ if env is None else env
        self._endpoints: dict[str, Endpoint] = {name: make_endpoint(name, cfg, env) for name, cfg in providers.items()}
        self._fallbacks = {name: _parse_fallbacks(name, cfg, providers) for name, cfg in providers.items()}
        self._budgets = {
            name: RetryBudget(
                retry_budget_ratio, window_s=retry_budget_window_s, min_retries=retry_budget_min, clock=clock
            )
            for name in providers
        }
        self._limiters = {
            name: ProviderRateLimiter(
                name,
                rpm=cfg.rpm,
                tpm=cfg.tpm,
                headroom=rate_limit_headroom,
                max_wait_s=limiter_max_wait_s,
                clock=clock,
                sleep=sleep,
            )
            for name, cfg in providers.items()
        }
        self._backoff = backoff or Backoff()
        self._on_attempt = on_attempt
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._transport = transport or Transport(proxies=ProxySettings.from_env(env))
        self._ca_bundles = {name: _ca_bundle(name, cfg) for name, cfg in providers.items()}

    @classmethod
    def from_config(cls, config: FiscusConfig, **options: object) -> Upstream:
        """Providers from `config.providers`; retry budget and rate-limit headroom from `config.gateway`."""
        options.setdefault("retry_budget_ratio", config.gateway.retry_budget_ratio)
        options.setdefault("rate_limit_headroom", config.gateway.rate_limit_headroom)
        return cls(config.providers, **options)  # type: ignore[arg-type]

    async def __aenter__(self) -> Upstream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

    def endpoint(self, provider: str) -> Endpoint:
        try:
            return self._endpoints[provider]
        except KeyError:
            known = ", ".join(sorted(self._endpoints)) or "none"
            raise UnknownProviderError(f"unknown provider {provider!r} (configured: {known})") from None

    def route(self, model: str) -> str | None:
        """The first configured provider whose `models` patterns match `model`, or None."""
        for name, endpoint in self._endpoints.items():
            if any(fnmatch.fnmatchcase(model, pattern) for pattern in endpoint.config.models):
                return name
        return None

    def retry_budget(self, provider: str) -> RetryBudget:
        return self._budgets[self.endpoint(provider).name]

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        """Forward a call and read the whole answer. Non-2xx answers are returned, not raised."""
        served = await self._open(request)
        try:
            body = served.body
            if body is None:
                try:
                    body = await served.answer.read()
                except ReadTimedOut as exc:
                    raise UpstreamTimeoutError(f"provider {served.provider!r} stalled ({exc})") from None
                except BrokenAnswer as exc:
                    raise ProviderError(f"provider {served.provider!r} broke the answer off ({exc})") from None
        finally:
            served.answer.close()
        return UpstreamResponse(
            status=served.answer.status,
            headers=served.answer.headers,
            body=body,
            provider=served.provider,
            model=served.model,
            attempts=served.attempts,
            fallback=served.fallback,
        )

    async def passthrough(
        self,
        provider: str,
        method: str,
        path: str,
        body: bytes = b"",
        *,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> UpstreamResponse:
        """A call that is not a model call (the Files and Batch APIs): `path` under the provider's base URL with its
        credentials, tried once (a create is not idempotent) and never on a fallback. Non-2xx answers are returned."""
        endpoint = self.endpoint(provider)
        sent = endpoint.headers(UpstreamRequest(provider, "chat.completions", "", body, headers=headers or {}))
        if content_type is not None:
            sent["content-type"] = content_type
        elif not body:
            sent.pop("content-type", None)
        timeouts = Timeouts(endpoint.config.timeout_connect_s, endpoint.config.timeout_read_s)
        ca_bundle = self._ca_bundles[endpoint.name]
        try:
            answer = await self._transport.open(
                endpoint.base_url + path, sent, body, timeouts, ca_bundle=ca_bundle, method=method
            )
        except ConnectFailed as exc:
            raise UpstreamConnectError(f"provider {endpoint.name!r}: {exc}") from None
        except ReadTimedOut as exc:
            raise UpstreamTimeoutError(f"provider {endpoint.name!r} did not answer ({exc})") from None
        try:
            data = await answer.read()
        except (ReadTimedOut, BrokenAnswer) as exc:
            raise ProviderError(f"provider {endpoint.name!r} broke the answer off ({exc})") from None
        finally:
            answer.close()
        data = endpoint.redact(data) if answer.status >= 300 else data
        return UpstreamResponse(answer.status, answer.headers, data, endpoint.name, "")

    @asynccontextmanager
    async def stream(self, request: UpstreamRequest) -> AsyncIterator[UpstreamStream]:
        """Open a streamed call; retries and fallbacks happen only before the first byte is handed over. Leaving
        the block closes the upstream connection, even mid-stream."""
        served = await self._open(request)
        try:
            yield UpstreamStream(served)
        finally:
            served.answer.close()

    async def _open(self, request: UpstreamRequest) -> _Served:
        primary = self.endpoint(request.provider)
        if _COUNTERPART.get(request.operation) not in primary.operations:  # else translated, as a fallback is
            primary.check(request.operation)
        candidates = [(primary.name, request.model), *self._fallbacks[primary.name]]
        last_answer: _Served | None = None
        last_error: ProviderError | None = None
        total = 0
        translations: dict[Operation, Translation] = {}
        for index, (name, model) in enumerate(candidates):
            endpoint = self._endpoints[name]
            fallback = index > 0
            sent, translated = request, None
            if request.operation not in endpoint.operations:  # a fallback that speaks the other format
                try:
                    translated = _translation(request, endpoint, translations)
                except Untranslatable as exc:
                    self._report(Attempt(name, model, 0, "skipped", error=str(exc), fallback=fallback))
                    continue
                # Client headers are the client format's feature flags: the provider's own are set by its endpoint.
                body = translated.request(request.body, model)
                sent = replace(request, operation=translated.operation, model=model, body=body, headers={})
            try:
                await self._limiters[name].acquire(request.estimated_tokens)
            except RateLimitedError as exc:
                self._report(Attempt(name, model, 0, "rate_limited", error=str(exc), fallback=fallback))
                last_error = exc
                continue
            self._budgets[name].record_request()
            result = await self._try_provider(endpoint, model, sent, fallback, total)
            if isinstance(result, _Served) and translated is not None:
                result.translate(translated, request.stream)
            if isinstance(result, _Served):
                total = result.attempts
                if result.body is None or not is_retryable(result.answer.status):
                    return result
                last_answer = result
            else:
                total, last_error = result
        if last_answer is not None:
            return last_answer
        if last_error is None:  # every candidate skipped: cannot happen (the primary serves the operation)
            raise UnsupportedOperationError(f"no configured provider serves {request.operation!r}")
        raise last_error

    async def _try_provider(
        self, endpoint: Endpoint, model: str, request: UpstreamRequest, fallback: bool, total: int
    ) -> _Served | tuple[int, ProviderError]:
        """Try one provider/model with retries; an open 2xx, a read error answer, or the connection error."""
        config = endpoint.config
        url = endpoint.url(request.operation, model, request.stream)
        headers = endpoint.headers(request)
        body = endpoint.body(request, model)
        timeouts = Timeouts(config.timeout_connect_s, config.timeout_read_s)
        ca_bundle = self._ca_bundles[endpoint.name]
        number = 0
        while True:
            started = self._clock()
            total += 1
            served: _Served | None = None
            error: ProviderError | None = None
            try:
                answer = await self._transport.open(url, headers, body, timeouts, ca_bundle=ca_bundle)
            except ConnectFailed as exc:
                error = UpstreamConnectError(f"provider {endpoint.name!r}: {exc}")
            except ReadTimedOut as exc:
                self._report(
                    Attempt(endpoint.name, model, number, "error", error=str(exc), retry=number > 0, fallback=fallback)
                )
                raise UpstreamTimeoutError(f"provider {endpoint.name!r} did not answer ({exc})") from None
            else:
                served = _Served(answer, None, endpoint.name, model, total, fallback)
                reader = endpoint.stream_reader(request.operation) if request.stream else None
                if reader is not None and answer.status < 300:  # a stream framed otherwise than as SSE
                    served.answer = TranslatedBody(answer, None, reader)
                if answer.status >= 300:
                    try:
                        served.body = endpoint.redact(await answer.read())
                    except TransportError:
                        served.body = b""
                    finally:
                        answer.close()
            status = served.answer.status if served else None
            if served is not None and status is not None and not is_retryable(status):
                if self._on_attempt is not None:  # built once, with its outcome: this runs on every call
                    done = Attempt(
                        endpoint.name,
                        model,
                        number,
                        "ok" if status < 300 else "error",
                        status=status,
                        retry=number > 0,
                        fallback=fallback,
                        elapsed_s=self._clock() - started,
                    )
                    self._report(done)
                return served
            done = Attempt(
                endpoint.name,
                model,
                number,
                "ok",
                status=status,
                error=str(error) if error else None,
                retry=number > 0,
                fallback=fallback,
                elapsed_s=self._clock() - started,
            )
            failure: _Served | tuple[int, ProviderError] = served if served is not None else (total, error)  # type: ignore[assignment]
            wait = retry_after_s(served.answer.headers) if served is not None else None
            if number >= config.max_retries or (wait is not None and wait > self._backoff.max_retry_after_s):
                self._report(replace(done, outcome="gave_up"))
                return failure
            if not self._budgets[endpoint.name].try_spend():
                self._report(replace(done, outcome="budget_exhausted"))
                return failure
            delay = wait if wait is not None else self._backoff.delay(number, self._rng)
            self._report(replace(done, outcome="retry", delay_s=delay))
            await self._sleep(delay)
            try:  # a retry is a request too: it counts against the provider's RPM/TPM
                await self._limiters[endpoint.name].acquire(request.estimated_tokens)
            except RateLimitedError as exc:
                # Not sent, so not counted as a retry (`retry` marks tries that reached the provider).
                refused = replace(done, number=number + 1, outcome="rate_limited", status=None, error=str(exc))
                self._report(replace(refused, retry=False, elapsed_s=0.0))
                return failure
            number += 1

    def _report(self, attempt: Attempt) -> None:
        if self._on_attempt is None:
            return
        try:
            self._on_attempt(attempt)
        except Exception:  # a metrics bug must not fail the call
            log.exception("on_attempt callback failed")


# The operation a provider of the other wire format is asked for instead (see `fiscus.providers.translate`).
_COUNTERPART: dict[Operation, Operation] = {"chat.completions": "messages", "messages": "chat.completions"}


def _translation(request: UpstreamRequest, endpoint: Endpoint, made: dict[Operation, Translation]) -> Translation:
    """The request translated for `endpoint`'s format (made once per request and format); `Untranslatable` when
    the pair is not translated or the request cannot be carried over."""
    target = _COUNTERPART.get(request.operation)
    if target is None or target not in endpoint.operations:
        raise Untranslatable(f"wire format differs: {endpoint.name!r} does not serve {request.operation}")
    if target not in made:
        made[target] = translation(request.operation, target, request.body)
    return made[target]


def _ca_bundle(name: str, config: ProviderConfig) -> str | None:
    """The provider's CA bundle, loaded once here so a missing or broken file fails at start, naming the setting."""
    if config.ca_bundle is None:
        return None
    try:
        tls_context(str(config.ca_bundle))
    except ConfigError as exc:
        raise ConfigError(f"providers.{name}.ca_bundle: {exc}") from None
    return str(config.ca_bundle)


def _parse_fallbacks(
    name: str, config: ProviderConfig, providers: Mapping[str, ProviderConfig]
) -> list[tuple[str, str]]:
    out = []
    for entry in config.fallbacks:
        provider, sep, model = entry.partition("/")
        if not sep or not model:
            raise ConfigError(f"providers.{name}.fallbacks: {entry!r} is not 'provider/model'")
        if provider not in providers:
            raise ConfigError(f"providers.{name}.fallbacks: {entry!r} names unknown provider {provider!r}")
        out.append((provider, model))
    return out
