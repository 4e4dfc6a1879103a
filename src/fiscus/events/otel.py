"""OpenTelemetry: a `CostEvent` as GenAI semantic-convention attributes (plus `fiscus.*` for the rest), and
`CostSpans`, which turns every recorded call into a span once the application has installed a tracer provider."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from fiscus.events.cost_event import CostEvent

# genai-prices / fiscus provider names → gen_ai.provider.name values of the semantic conventions.
_PROVIDER_NAMES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "gcp.gemini",
    "gemini": "gcp.gemini",
    "azure": "azure.ai.openai",
    "aws": "aws.bedrock",
}


def otel_attributes(event: CostEvent) -> dict[str, str | int | float | bool]:
    """Span attributes for one call. Token counts follow the GenAI conventions: `input_tokens` is every
    input token (cache included), with cache reads and writes broken out beside it."""
    usage = event.usage
    attrs: dict[str, str | int | float | bool] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": _PROVIDER_NAMES.get(event.provider, event.provider),
        "gen_ai.request.model": event.requested_model,
        "gen_ai.response.model": event.served_model,
        "gen_ai.usage.input_tokens": usage.total_input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": usage.cache_read_tokens,
        "gen_ai.usage.cache_creation.input_tokens": usage.cache_write_tokens,
        "gen_ai.usage.reasoning.output_tokens": usage.reasoning_tokens,
        "fiscus.event.id": event.id,
        "fiscus.status": str(event.status),
        "fiscus.cost.usd": format(event.cost.total, "f"),
        "fiscus.usage.estimated": usage.estimated,
        "fiscus.cost.fallback_price": event.cost.fallback_price,
    }
    if event.attribution.agent:
        attrs["gen_ai.agent.name"] = event.attribution.agent
    if event.attribution.session:
        attrs["gen_ai.conversation.id"] = event.attribution.session
    for name, value in event.attribution.to_dict().items():
        if value is not None:
            attrs[f"fiscus.attribution.{name}"] = value
    if event.model_tier:
        attrs["fiscus.model_tier"] = event.model_tier
    if event.latency_ms is not None:
        attrs["fiscus.latency_ms"] = event.latency_ms
    if event.error:
        attrs["error.type"] = event.error
    return attrs


class CostSpans:
    """A cost-event listener: one CLIENT span per call, named `chat <requested model>`, from the call's start to
    its end, under the span current where the call was settled (an SDK call: the caller's own). Until the
    application installs a tracer provider (the API's default is a proxy that records nothing) it only checks."""

    def __init__(self, provider: Any | None = None) -> None:
        from opentelemetry import trace

        self._trace = trace
        self._provider = provider
        self._tracers: dict[int, Any] = {}

    def __call__(self, event: CostEvent) -> None:
        trace = self._trace
        provider = self._provider or installed_provider()
        if provider is None:
            return
        tracer = self._tracers.get(id(provider))
        if tracer is None:
            from fiscus import __version__

            tracer = self._tracers[id(provider)] = provider.get_tracer("fiscus", __version__)
        start = int(event.timestamp.timestamp() * 1e9)
        span = tracer.start_span(
            f"chat {event.requested_model}",
            kind=trace.SpanKind.CLIENT,
            start_time=start,
            attributes=otel_attributes(event),
        )
        if event.status == "error":
            span.set_status(trace.Status(trace.StatusCode.ERROR, event.error))
        span.end(end_time=start + (event.latency_ms or 0) * 1_000_000)


_looked: tuple[float, Any] = (float("-inf"), None)  # (when, the global provider or None), for a second


def installed_provider() -> Any | None:
    """The tracer provider the application installed, or None while the API's default proxy (which records
    nothing) stands: looked up at most once a second, since every call asks."""
    global _looked
    now = time.monotonic()
    when, provider = _looked
    if now - when >= 1.0:
        from opentelemetry import trace

        found = trace.get_tracer_provider()
        provider = None if isinstance(found, trace.ProxyTracerProvider) else found
        _looked = (now, provider)
    return provider


def join_callers_trace(headers: Iterable[tuple[bytes, bytes]]) -> Any | None:
    """When tracing is on and the request carries a W3C `traceparent`, make the caller's trace context current,
    so the spans of this request's calls join the caller's trace. Returns the token to `release`, or None."""
    if installed_provider() is None:
        return None
    carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in headers if name in _TRACE_HEADERS}
    if "traceparent" not in carrier:
        return None
    from opentelemetry import context, propagate

    return context.attach(propagate.extract(carrier))


def release(token: Any) -> None:
    from opentelemetry import context

    context.detach(token)


_TRACE_HEADERS = (b"traceparent", b"tracestate")
