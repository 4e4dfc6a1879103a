"""Every settled call becomes one OpenTelemetry CLIENT span (GenAI semantic conventions) once the application
installs a tracer provider: timed from the call's start, under the caller's current span, errors marked."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fiscus.attribution import Attribution
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.events.otel import CostSpans
from fiscus.governor import CallRequest, Governor
from fiscus.policy import parse_policy
from fiscus.pricing import PriceCatalogue
from fiscus.pricing.cost import Cost
from fiscus.stores import open_store
from fiscus.usage.model import Usage

T = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)


def provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return tracer_provider, exporter


def event(**kw: object) -> CostEvent:
    fields: dict[str, object] = {
        "id": "e1",
        "timestamp": T,
        "provider": "anthropic",
        "requested_model": "claude-sonnet-4-6",
        "served_model": "claude-haiku-4-5",
        "usage": Usage(input_tokens=900, cache_read_tokens=100, output_tokens=50),
        "cost": Cost(input=Decimal("0.0009"), output=Decimal("0.00025")),
        "attribution": Attribution(agent="researcher", team="growth", session="s-1"),
        "latency_ms": 840,
        **kw,
    }
    return CostEvent(**fields)  # type: ignore[arg-type]


def test_a_span_per_call_with_the_genai_attributes_under_the_current_span() -> None:
    tracer_provider, exporter = provider()
    spans = CostSpans(tracer_provider)
    with tracer_provider.get_tracer("app").start_as_current_span("agent step") as parent:
        spans(event())
    (span, outer) = exporter.get_finished_spans()
    assert span.name == "chat claude-sonnet-4-6" and span.kind is trace.SpanKind.CLIENT
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    assert span.start_time == int(T.timestamp() * 1e9) and span.end_time - span.start_time == 840_000_000
    attrs = span.attributes
    assert attrs["gen_ai.operation.name"] == "chat" and attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["gen_ai.response.model"] == "claude-haiku-4-5" and attrs["gen_ai.usage.input_tokens"] == 1000
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 100 and attrs["fiscus.cost.usd"] == "0.00115"
    assert attrs["gen_ai.agent.name"] == "researcher" and attrs["gen_ai.conversation.id"] == "s-1"
    assert outer.name == "agent step"


def test_errors_are_marked_and_nothing_happens_without_a_provider() -> None:
    tracer_provider, exporter = provider()
    CostSpans(tracer_provider)(event(status=CallStatus.ERROR, error="APIStatusError: 529 overloaded"))
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is trace.StatusCode.ERROR and "529" in (span.status.description or "")
    CostSpans()(event())  # the API's default provider: a proxy recording nothing, and no error


def test_the_governor_reports_every_settled_call() -> None:
    tracer_provider, exporter = provider()
    budgets = [{"name": "team", "scope": {"team": "growth"}, "window": "day", "limit": {"usd": 10}}]
    governor = Governor(
        policy=parse_policy({"budgets": budgets}), store=open_store("memory://"), catalogue=PriceCatalogue()
    )
    governor.add_cost_listener(CostSpans(tracer_provider))
    request = CallRequest("openai", "gpt-4o-mini", Attribution(team="growth"), input_tokens=20, max_tokens=16)
    recorded = governor.settle(governor.admit(request), Usage(input_tokens=20, output_tokens=8))
    (span,) = exporter.get_finished_spans()
    assert (
        span.attributes["fiscus.event.id"] == recorded.id and span.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    )
    governor.add_cost_listener(lambda _: 1 / 0)  # a failing listener is logged, never raised into the call
    governor.settle(governor.admit(request), Usage(input_tokens=20, output_tokens=8))
    assert len(exporter.get_finished_spans()) == 2
