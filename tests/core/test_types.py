from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fiscus.attribution import DIMENSIONS, Attribution
from fiscus.events import CallStatus, CostEvent, new_event_id, otel_attributes
from fiscus.money import from_nanos, to_nanos
from fiscus.pricing import Cost, usd
from fiscus.usage import Usage


def test_usage_parts_are_disjoint() -> None:
    usage = Usage(input_tokens=10, cache_read_tokens=70, cache_write_5m_tokens=15, cache_write_1h_tokens=5)
    assert usage.total_input_tokens == 100
    assert usage.cache_hit_ratio == Decimal("0.7")
    assert Usage().cache_hit_ratio == 0


def test_usage_rejects_bad_counts() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        Usage(input_tokens=-1)
    with pytest.raises(ValueError, match="reasoning"):
        Usage(output_tokens=1, reasoning_tokens=2)


def test_usage_sum_keeps_estimated_flag() -> None:
    total = Usage(input_tokens=1) + Usage(output_tokens=2, estimated=True)
    assert total == Usage(input_tokens=1, output_tokens=2, estimated=True)
    assert Usage.from_dict(total.to_dict()) == total


def test_cost_total_and_dict_are_exact() -> None:
    cost = Cost(input=Decimal("0.1"), cache_read=Decimal("0.2"), output=Decimal("0.0000001"))
    assert cost.total == Decimal("0.3000001")
    assert cost.to_dict()["total_usd"] == "0.3000001"
    assert Cost.from_dict(cost.to_dict()) == cost
    assert usd(Decimal(150)) == "$150.00" and usd(Decimal("0.0075")) == "$0.0075"


def test_nanos_round_up_never_under() -> None:
    assert to_nanos(Decimal("0.0000000001")) == 1
    assert to_nanos(Decimal("1.5")) == 1_500_000_000
    assert from_nanos(1_500_000_000) == Decimal("1.5")


def test_attribution_refine_and_validation() -> None:
    base = Attribution(team="growth", agent="triage", environment="")
    assert base.environment is None
    refined = base.refine(workflow="intake", agent=None)
    assert refined.agent == "triage" and refined.workflow == "intake"
    with pytest.raises(ValueError, match="unknown attribution"):
        base.refine(colour="blue")
    with pytest.raises(TypeError):
        Attribution(team=3)  # type: ignore[arg-type]
    assert set(base.to_dict()) == set(DIMENSIONS)


def test_cost_event_round_trip_and_otel() -> None:
    event = CostEvent(
        provider="anthropic",
        requested_model="claude-opus-4-6",
        served_model="claude-sonnet-4-6",
        model_tier="sonnet",
        usage=Usage(input_tokens=100, cache_read_tokens=900, output_tokens=50, reasoning_tokens=20),
        cost=Cost(input=Decimal("0.0003"), cache_read=Decimal("0.00027"), output=Decimal("0.00075")),
        attribution=Attribution(agent="researcher", session="s-1", outcome="resolved_case"),
        status=CallStatus.PARTIAL,
        timestamp=datetime(2026, 11, 1, tzinfo=UTC),
        latency_ms=12,
    )
    assert CostEvent.from_dict(event.to_dict()) == event
    attrs = otel_attributes(event)
    assert attrs["gen_ai.usage.input_tokens"] == 1000
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 900
    assert attrs["gen_ai.request.model"] == "claude-opus-4-6"
    assert attrs["gen_ai.response.model"] == "claude-sonnet-4-6"
    assert attrs["gen_ai.agent.name"] == "researcher"
    assert attrs["fiscus.attribution.outcome"] == "resolved_case"
    assert event.cache_hit_ratio == Decimal("0.9")


def test_event_ids_unique_and_time_ordered() -> None:
    ids = [new_event_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert ids[0][:8] <= ids[-1][:8]
