"""One proxied call: authenticate, check, admit through the governor, shape, forward, read usage, settle.

Every path after admission settles exactly once (the governor's settle is idempotent, so a defensive second
settle on an error path is harmless): answered, blocked, partial, upstream error, client gone mid-stream.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive

from fiscus.config import FiscusConfig
from fiscus.engine.decision import Action
from fiscus.errors import FiscusError
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.events.savings import Shaped
from fiscus.gateway.answers import (
    outage_response,
)
from fiscus.gateway.auth import AttributionCache, client_key
from fiscus.gateway.body import upstream_body
from fiscus.gateway.exact_count import countable
from fiscus.gateway.exact_count import counted as count_exactly
from fiscus.gateway.guards import GatewayGuards
from fiscus.gateway.intake import BodyIntake
from fiscus.gateway.metrics import GatewayMetrics
from fiscus.gateway.protocol import BadRequest, ParsedRequest, Protocol, parse_request
from fiscus.gateway.refusals import NoModelAnswers
from fiscus.gateway.refusals import usd as _usd
from fiscus.gateway.relay import StreamRelay, UsageChunkFilter, cost_trailer
from fiscus.gateway.response_cache import HEADER as CACHE_HEADER
from fiscus.gateway.response_cache import GatewayResponseCache, Lookup
from fiscus.gateway.responses import JSON, SSE, RawResponse
from fiscus.gateway.routing import Router
from fiscus.gateway.summaries import Summariser
from fiscus.governor import Admission, CallRequest, Governor
from fiscus.governor.drive import adrive
from fiscus.guards.overridable import key_grant, passed_scopes
from fiscus.keys import KeyRing
from fiscus.ledger.outcomes import record_call_outcome
from fiscus.overrides import OverrideBook
from fiscus.providers import ProviderError, RateLimitedError, Upstream, UpstreamRequest
from fiscus.providers.messages import UnknownProviderError, UnsupportedOperationError
from fiscus.sdk.override_grants import announce_steps
from fiscus.shaping.cache import CachePlacer, stable_tools
from fiscus.shaping.compress import fit_window
from fiscus.shaping.response_cache import MAX_ENTRY_BYTES
from fiscus.usage.bounds import input_fields
from fiscus.usage.detect import usage_from_body
from fiscus.usage.estimate import estimator_name
from fiscus.usage.model import Usage
from fiscus.usage.tracker import StreamUsageTracker

log = logging.getLogger("fiscus.gateway")

# Client headers passed on upstream: provider feature flags, and the emulator's fault steering (real
# providers ignore it). Credentials are never forwarded; the provider adapter sets its own.
_FORWARD_PREFIXES = ("anthropic-beta", "anthropic-version", "openai-beta", "x-emulator-")
_RENEW_EVERY_S = 30.0
_TRACK_BATCH_BYTES = 32 * 1024


_NO_PROVIDER = (CallStatus.BLOCKED, CallStatus.PARTIAL)


class Gateway(NoModelAnswers):
    """What every call of one app shares: governor, keys, routes, upstream pool, metrics."""

    def __init__(
        self,
        config: FiscusConfig,
        *,
        governor: Governor,
        keys: KeyRing,
        upstream: Upstream,
        metrics: GatewayMetrics,
        guards: GatewayGuards,
        overrides: OverrideBook | None = None,
    ) -> None:
        self.config = config
        self.overrides = overrides
        self.governor = governor
        self.guards = guards
        self.keys = keys
        self.upstream = upstream
        self.metrics = metrics
        self.router = Router(config.providers)
        self.intake = BodyIntake(
            limit=config.gateway.max_body_bytes,
            timeout_s=config.gateway.body_timeout_s,
            max_slow=config.gateway.max_slow_bodies,
        )
        self.attribute = AttributionCache()
        self.cache_placer = CachePlacer() if config.optimise.prompt_cache else None
        policy = getattr(governor, "policy", None)
        self.summariser = Summariser(governor, upstream, self.router) if policy and policy.summaries else None
        self._windows = dict(policy.context) if policy is not None else {}  # task class → its context window
        self._kinds = {str(name): provider.kind for name, provider in config.providers.items()}
        rules = getattr(governor, "task_classes", None)
        if rules is not None and policy is not None and policy.cross_routes:  # routes out of a family: translated
            rules.provider_of = self.router.provider_of
        self.response_cache: GatewayResponseCache | None = None
        if policy and policy.response_cache:  # kept in the budget store's backend
            from fiscus.stores.response_cache import open_response_cache

            self.response_cache = GatewayResponseCache(governor, open_response_cache(config.budget_store))

    async def handle(self, protocol: Protocol, scope: Mapping[str, Any], receive: Receive) -> ASGIApp:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        key = client_key(headers)
        if key is None:
            raise BadRequest(
                "missing API key: send a fiscus virtual key as a Bearer token or x-api-key",
                status=401,
                code="invalid_api_key",
            )
        vkey = await self.keys.averify(key)
        if vkey is None:
            raise BadRequest("invalid or revoked API key", status=401, code="invalid_api_key")
        raw = await self.intake.read(receive, headers.get("content-length"))
        request = parse_request(protocol, raw)
        provider = self.router.route(request.model, protocol)
        if provider is None:
            raise BadRequest(
                f"The model `{request.model}` is not served by this gateway",
                status=404,
                param="model",
                code="model_not_found",
            )
        attribution, priority, ignored = self.attribute(vkey, headers)
        # The caller learns which of its headers did not count (the key is set to ignore what it does not allow).
        noted = {"x-fiscus-ignored-headers": ",".join(ignored)} if ignored else None
        granted = await self.overrides.agrants_for(vkey.id) if self.overrides is not None else ()
        verdict = self.guards.check_call(
            attribution, protocol.format, request.body, provider=provider, model=request.model, grant=key_grant(granted)
        )
        if verdict.refusal is not None:
            return await self._guarded(protocol, request, provider, attribution, verdict.refusal, noted)
        cached = None
        if self.response_cache is not None:  # the request as the client sent it: before any shaping
            cached = await self.response_cache.lookup(protocol, request, attribution)
            if cached is not None and cached.answer is not None:
                return await self.response_cache.replay(
                    cached, request, provider, attribution, noted or {}, verdict.passed
                )
        forwarded = {k: v for k, v in headers.items() if k.startswith(_FORWARD_PREFIXES)}
        summary = None
        if self.summariser is not None:  # before the estimate: the call is admitted as it will be sent
            summary = await self.summariser.summarise(protocol, request, provider, attribution, forwarded)
            if summary is not None:
                raw, request = orjson.dumps(summary.body), replace(request, body=summary.body)
        if self.cache_placer and not protocol.anthropic:  # a prefix the provider caches by itself: keep it stable
            stable = stable_tools(request.body)
            if stable is not None:
                raw, request = orjson.dumps(stable), replace(request, body=stable)
        placed = None
        if self.cache_placer and protocol.anthropic:
            window = self._windows.get(attribution.task_class) if attribution.task_class else None
            placed = self.cache_placer.place(request.body, window_tokens=window)
        if placed is not None:  # before the estimate: the reservation must cover the cache write
            raw, request = orjson.dumps(placed), replace(request, body=placed)
        # Only Anthropic requests with cache_control markers can write a prompt cache (priced above input),
        # and only the prompt up to the last marker, at the TTL each marker asks for.
        writes_cache = protocol.anthropic and b'"cache_control"' in raw
        counted = input_fields(request.body, protocol.format, writes_cache=writes_cache)
        input_tokens = counted["input_tokens"]
        call = CallRequest(
            provider=provider,
            model=request.model,
            attribution=attribution,
            max_tokens=request.max_tokens,
            priority=priority,
            overrides=granted,
            passed=verdict.passed,
            countable=countable(self._kinds, provider, protocol.anthropic),
            **counted,
        )
        admission = await self.governor.aadmit(call)
        if admission.decision.count_helps:  # near a limit the byte bound stops it: the provider counts it
            admission = await self.governor.aadmit(await count_exactly(self.upstream, call, request.body, forwarded))
            input_tokens = admission.request.input_tokens  # the provider's count, where it gave one
        if summary is not None:
            admission.shaped = Shaped(summary_tokens=summary.tokens)
        self.metrics.decision(admission.decision.action)
        if admission.decision.override_ids:
            # the first call each override lets through, announced once across every worker and SDK process
            await adrive(announce_steps(self.governor, admission), self.governor.store)
        try:
            return await self._admitted(
                protocol,
                request,
                raw,
                provider,
                input_tokens,
                admission,
                headers,
                cache_placed=placed is not None,
                noted=noted,
                cached=cached,
            )
        except BaseException as exc:
            await self.settle(admission, None, status=CallStatus.ERROR, error=f"gateway: {exc!r}"[:500])
            raise

    async def settle(
        self,
        admission: Admission,
        usage: Usage | None,
        *,
        provider_failed: bool = False,
        reached_provider: bool = True,
        **kwargs: Any,
    ) -> CostEvent:
        """Settle through the governor and tell the breakers how the call went (`provider_failed`: see
        `GatewayGuards.settled`). A call refused before it reached the provider says nothing of its health."""
        event = await self.governor.asettle(admission, usage, **kwargs)
        if reached_provider and kwargs.get("status") not in _NO_PROVIDER:
            passed = passed_scopes(admission.request.passed) if admission.request.passed else frozenset()
            self.guards.settled(admission.request.attribution, event, provider_failed=provider_failed, passed=passed)
        if event.attribution.outcome is not None:  # x-fiscus-outcome on a session's call: the case's outcome
            record_call_outcome(getattr(self.governor, "ledger", None), event)
        return event

    async def _admitted(
        self,
        protocol: Protocol,
        request: ParsedRequest,
        raw: bytes,
        provider: str,
        input_tokens: int,
        admission: Admission,
        headers: dict[str, str],
        *,
        cache_placed: bool = False,
        noted: dict[str, str] | None = None,
        cached: Lookup | None = None,
    ) -> ASGIApp:
        decision = admission.decision
        out = {"x-fiscus-request-id": admission.event_id} | (noted or {})
        if cached is not None:
            out[CACHE_HEADER] = "miss"
            if decision.degraded:  # a degraded answer is not the one asked for: never kept
                cached = None
        if cache_placed:
            out["x-fiscus-prompt-cache"] = "placed"
        if decision.action is Action.BLOCK:
            return await self._blocked(protocol, admission, out, code=self._budget_code(decision.exhausted_budget))
        if decision.action is Action.PARTIAL:
            code = self._budget_code(decision.exhausted_budget)
            return await self._partial(protocol, request, admission, out, code=code)
        if decision.action.severity >= Action.WARN.severity:
            out["x-fiscus-budget"] = str(decision.action)
        body, rebuilt, changes = request.body, False, {}
        served = decision.model or request.model
        if served != request.model:
            changes["model"] = served
            provider = self.router.route(served, protocol) or self.router.across(served, protocol) or provider
            out["x-fiscus-requested-model"] = request.model
            out["x-fiscus-served-model"] = served
        if decision.max_tokens and (request.max_tokens is None or decision.max_tokens < request.max_tokens):
            changes[request.cap_field] = decision.max_tokens
        if decision.compress_to_tokens:
            body, removed = fit_window(body | changes, protocol.format, decision.compress_to_tokens)
            rebuilt, changes = True, {}
            out["x-fiscus-compressed-tokens"] = str(removed.tokens_cut)
            out["x-fiscus-compressed"] = removed.describe()
            summarised = admission.shaped.summary_tokens if admission.shaped else 0
            admission.shaped = Shaped(context_tokens=removed.tokens_cut, summary_tokens=summarised)
        strip_usage = False
        if request.stream and protocol.format == "openai_chat" and not request.wants_usage:
            changes["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
            strip_usage = True
        forwarded = {k: v for k, v in headers.items() if k.startswith(_FORWARD_PREFIXES)}
        upstream_request = UpstreamRequest(
            provider=provider,
            operation=protocol.operation,  # type: ignore[arg-type]
            model=served,
            body=upstream_body(raw, body, changes, rebuilt=rebuilt),
            stream=request.stream,
            headers=forwarded,
            estimated_tokens=input_tokens + (decision.max_tokens or 0),
        )
        if request.stream:
            return await self._stream(protocol, upstream_request, admission, input_tokens, strip_usage, out, cached)
        return await self._whole(protocol, upstream_request, admission, input_tokens, out, cached)

    async def _whole(
        self,
        protocol: Protocol,
        upstream_request: UpstreamRequest,
        admission: Admission,
        input_tokens: int,
        out: dict[str, str],
        cached: Lookup | None = None,
    ) -> ASGIApp:
        started = time.perf_counter()
        try:
            answer = await self.upstream.send(upstream_request)
        except ProviderError as exc:
            outage = self._upstream_failure(protocol, upstream_request.provider, exc)
            event = await self.settle(
                admission, None, status=CallStatus.ERROR, error=str(exc), provider_failed=provider_side(exc)
            )
            return outage_response(protocol, outage, out | {"x-fiscus-cost-usd": _usd(event)})
        latency = time.perf_counter() - started
        self.metrics.upstream_latency(upstream_request.provider, latency)
        if answer.ok:
            usage = _body_usage(answer.body, protocol, input_tokens)
            if cached is not None and self.response_cache is not None and answer.status == 200:
                media = answer.headers.get("content-type", JSON)
                await self.response_cache.keep(cached, answer.body, media, usage, answer.model, stream=False)
            cost = _price_now(admission, usage, answer.provider, answer.model)
            # The answer goes out first and the settle follows on this task, unless the store makes the settle
            # durable: then it lands before the answer, so an answered call survives the gateway being killed.
            if cost is not None and not self.governor.durable_settle:
                out["x-fiscus-cost-usd"] = cost
                media = answer.headers.get("content-type", JSON)
                response = RawResponse(answer.body, answer.status, out, media=media)
                response.after = self._settle_later(
                    admission, usage, answer.provider, answer.model, int(latency * 1000)
                )
                return response
            event = await self.settle(
                admission,
                usage,
                served_model=answer.model,
                served_provider=answer.provider,
                latency_ms=int(latency * 1000),
            )
        else:
            event = await self.settle(
                admission,
                None,
                status=CallStatus.ERROR,
                served_model=answer.model,
                served_provider=answer.provider,
                latency_ms=int(latency * 1000),
                error=f"upstream answered {answer.status}",
                provider_failed=answer.status >= 500,
            )
            self.metrics.settled(event)
            out["x-fiscus-cost-usd"] = _usd(event)
            return self._upstream_answered(protocol, answer.provider, answer.status, answer.body, answer.headers, out)
        self.metrics.settled(event)
        out["x-fiscus-cost-usd"] = _usd(event)
        media = answer.headers.get("content-type", JSON)
        return RawResponse(answer.body, answer.status, out, media=media)

    def _settle_later(
        self, admission: Admission, usage: Usage, provider: str, served: str, latency_ms: int
    ) -> Callable[[], Awaitable[None]]:
        async def settle() -> None:
            try:
                event = await self.settle(
                    admission, usage, served_model=served, served_provider=provider, latency_ms=latency_ms
                )
            except Exception:  # the answer is gone: the reservation stays held until its lease lapses
                log.exception("settling a call after its answer was sent failed")
                self.metrics.error("settle")
                return
            self.metrics.settled(event)

        return settle

    async def _stream(
        self,
        protocol: Protocol,
        upstream_request: UpstreamRequest,
        admission: Admission,
        input_tokens: int,
        strip_usage: bool,
        out: dict[str, str],
        cached: Lookup | None = None,
    ) -> ASGIApp:
        started = time.perf_counter()
        stack = AsyncExitStack()
        try:
            answer = await stack.enter_async_context(self.upstream.stream(upstream_request))
        except ProviderError as exc:
            await stack.aclose()
            outage = self._upstream_failure(protocol, upstream_request.provider, exc)
            event = await self.settle(
                admission, None, status=CallStatus.ERROR, error=str(exc), provider_failed=provider_side(exc)
            )
            return outage_response(protocol, outage, out | {"x-fiscus-cost-usd": _usd(event)})
        if not answer.ok:
            try:
                body = b"".join([chunk async for chunk in answer])
            finally:
                await stack.aclose()
            event = await self.settle(
                admission,
                None,
                status=CallStatus.ERROR,
                error=f"upstream answered {answer.status}",
                provider_failed=answer.status >= 500,
            )
            out["x-fiscus-cost-usd"] = _usd(event)
            return self._upstream_answered(protocol, answer.provider, answer.status, body, answer.headers, out)
        self.metrics.upstream_latency(upstream_request.provider, time.perf_counter() - started)
        tracker = StreamUsageTracker(protocol.format)
        strip = UsageChunkFilter() if strip_usage else None
        governor, metrics = self.governor, self.metrics
        renew_at = time.monotonic() + _RENEW_EVERY_S
        # The tracker is fed in batches: parsing costs per call, and nothing reads it before the stream ends.
        untracked: list[bytes] = []
        untracked_size = 0
        # What the client is sent, kept for the response cache (up to its entry bound).
        sent: list[bytes] | None = [] if cached is not None else None
        sent_size = 0

        def track() -> None:
            nonlocal untracked_size
            tracker.feed_bytes(untracked[0] if len(untracked) == 1 else b"".join(untracked))
            untracked.clear()
            untracked_size = 0

        def on_chunk(chunk: bytes) -> bytes:
            nonlocal renew_at, untracked_size
            untracked.append(chunk)
            untracked_size += len(chunk)
            if untracked_size >= _TRACK_BATCH_BYTES:
                track()
            if time.monotonic() > renew_at:  # a long stream keeps its reservation's lease alive
                renew_at = time.monotonic() + _RENEW_EVERY_S
                governor.renew(admission)
            passed = strip(chunk) if strip is not None else chunk
            if sent is not None:
                keep_sent(passed)
            return passed

        def keep_sent(chunk: bytes) -> None:
            nonlocal sent, sent_size
            sent_size += len(chunk)
            if sent_size > MAX_ENTRY_BYTES:
                sent = None  # too large to cache: served, not kept
            else:
                sent.append(chunk)  # type: ignore[union-attr]

        async def on_end(completed: bool, error: str | None) -> bytes:
            if untracked:
                track()
            usage = tracker.finish(estimate_input_tokens=input_tokens)
            event = await self.settle(
                admission,
                usage,
                status=CallStatus.OK if error is None else CallStatus.ERROR,
                served_model=answer.model,
                served_provider=answer.provider,
                latency_ms=int((time.perf_counter() - started) * 1000),
                error=error,
                streamed=True,
            )
            metrics.settled(event)
            if error is not None:
                metrics.error("stream")
            tail = strip.flush() if strip is not None else b""
            if sent is not None and tail:
                keep_sent(tail)
            if sent is not None and error is None and completed and self.response_cache is not None:
                body = b"".join(sent)
                await self.response_cache.keep(cached, body, SSE, usage, answer.model, stream=True)  # type: ignore[arg-type]
            return tail + cost_trailer(_usd(event))

        raw_headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
        raw_headers += [(k.encode(), v.encode()) for k, v in out.items()]
        return StreamRelay(
            answer.read_chunk, status=200, headers=raw_headers, on_chunk=on_chunk, on_end=on_end, close=stack.aclose
        )


def _price_now(admission: Admission, usage: Usage, provider: str, served: str) -> str | None:
    """The cost the settle will record, priced here from the admission's price sheet so the answer (and its
    `x-fiscus-cost-usd` header) need not wait for the store; None when only the settle can price it (a fallback
    served another model or provider)."""
    sheet = getattr(admission, "sheet", None)
    if sheet is None or served != admission.decision.model or provider != admission.request.provider:
        return None
    try:
        return format(sheet.cost(usage).total, "f")
    except FiscusError:
        return None


def _body_usage(body: bytes, protocol: Protocol, input_tokens: int) -> Usage:
    """The provider's reported usage; if the body cannot be read, the input estimate, flagged."""
    try:
        return usage_from_body(orjson.loads(body), protocol.format)
    except Exception as exc:  # an odd 2xx body must not lose the call: it is still recorded, as an estimate
        log.warning("could not read usage from a %s answer; recording an estimate", protocol.format)
        why = str(exc) if isinstance(exc, FiscusError) else type(exc).__name__
        how = f"the provider's usage could not be read ({why}): input counted from the request ({estimator_name()})"
        return Usage(input_tokens=input_tokens, estimated=True).as_estimated(how)


def provider_side(exc: ProviderError) -> bool:
    """A failure of the provider (timeout, connection error, 5xx) rather than of the request: what error-rate
    breakers count. A rate limit is the provider protecting itself from this account: not counted."""
    return not isinstance(exc, (RateLimitedError, UnknownProviderError, UnsupportedOperationError))
