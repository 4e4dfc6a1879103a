"""The gateway's calls as OpenTelemetry spans: each call one CLIENT span, joined to the client's trace when the
request carries a W3C `traceparent`, a root span otherwise."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fiscus.events import otel
from tests.gateway.conftest import real_gateway

POLICY = "budgets:\n  - {name: growth-day, scope: {team: growth}, window: day, limit: {usd: 100}}\n"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def test_spans_join_the_callers_trace(tmp_path: Path, emulator_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(otel, "installed_provider", lambda: provider)  # as if the app had installed it
    with real_gateway(tmp_path, emulator_url, POLICY, f"sqlite:///{tmp_path}/budget.db") as real:
        traced = real.openai(default_headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
        traced.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        list(traced.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True))
        real.openai().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        real.events()  # every call settled
        deadline = time.monotonic() + 10  # a span ends just after its event reaches the ledger's queue
        while len(exporter.get_finished_spans()) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    spans = sorted(exporter.get_finished_spans(), key=lambda span: span.start_time)
    assert [span.name for span in spans] == ["chat gpt-4o-mini", "chat gpt-4o", "chat gpt-4o-mini"]
    joined, streamed, root = spans
    for span in (joined, streamed):
        assert format(span.context.trace_id, "032x") == TRACE_ID
        assert span.parent is not None and format(span.parent.span_id, "016x") == PARENT_ID
    assert root.parent is None and format(root.context.trace_id, "032x") != TRACE_ID
    assert joined.attributes is not None and joined.attributes["fiscus.attribution.team"] == "growth"
