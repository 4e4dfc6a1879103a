"""One behaviour for every ledger backend: run against SQLite (a file) and PostgreSQL (the real server)."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta, timezone
from decimal import Decimal

import pytest

from fiscus.attribution import DIMENSIONS, Attribution
from fiscus.errors import StoreError
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.events.outcome_event import OutcomeRecorded
from fiscus.events.savings import Savings
from fiscus.ledger import Ledger, SpendQuery, UnknownDimensionError, open_ledger
from fiscus.ledger.migrations import migrations
from fiscus.pricing.cost import Cost
from fiscus.usage.model import Usage

from .conftest import T0, EventFactory


def test_append_counts_new_events_and_ignores_repeats(ledger: Ledger, make_event: EventFactory) -> None:
    a, b, c = make_event(), make_event(), make_event()
    assert ledger.append([a, b, a]) == 2  # repeated inside one batch
    assert ledger.append([a, b]) == 0  # a retried write
    assert ledger.append([b, c]) == 1
    assert ledger.append([]) == 0
    (row,) = ledger.spend(SpendQuery())
    assert row.requests == 3
    assert row.total_usd == Decimal("0.003")


def test_concurrent_appends_of_the_same_events_count_each_once(ledger: Ledger, make_event: EventFactory) -> None:
    shared = [make_event() for _ in range(100)]
    own = [[make_event() for _ in range(20)] for _ in range(6)]
    barrier = threading.Barrier(6)
    new_counts: list[int] = []
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            batches = [shared[j : j + 25] + own[i][j // 5 : j // 5 + 5] for j in (0, 25, 50, 75)]
            new_counts.append(sum(ledger.append(batch) for batch in batches))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(new_counts) == 100 + 6 * 20
    (row,) = ledger.spend(SpendQuery())
    assert row.requests == 220


def _full_event() -> CostEvent:
    return CostEvent(
        id="evt-full",
        timestamp=T0.astimezone(timezone(timedelta(hours=-5))) + timedelta(microseconds=123456),
        provider="anthropic",
        requested_model="claude-sonnet-4-5",
        served_model="claude-haiku-4-5",
        model_tier="small",
        status=CallStatus.PARTIAL,
        usage=Usage(
            input_tokens=1234,
            cache_read_tokens=5678,
            cache_write_5m_tokens=90,
            cache_write_1h_tokens=12,
            output_tokens=345,
            reasoning_tokens=67,
            estimated=True,
        ),
        cost=Cost(
            input=Decimal("0.003702"),
            cache_read=Decimal("0.000000018750"),
            cache_write_5m=Decimal("1E-12"),
            cache_write_1h=Decimal("12345.678901234567890123"),
            output=Decimal("0"),
            fallback_price=True,
            tools=Decimal("0.03"),
        ),
        attribution=Attribution(**{d: f"{d}-value" for d in DIMENSIONS}),
        latency_ms=4321,
        batch=True,
        streamed=True,
        error="upstream_timeout",
        decision="downgrade",
        tags={"ticket": "T-1", "région": "eu"},
        ungoverned_usd=Decimal("12346.000000000000000001"),
        saved=Savings(cache=Decimal("0.25"), route=Decimal("-1E-12"), context=Decimal("0.3"), summary=Decimal("0")),
    )


def test_every_field_round_trips_exactly(ledger: Ledger) -> None:
    event = _full_event()
    ledger.append([event])
    got = ledger.get(event.id)
    assert got == event
    assert got is not None
    assert got.timestamp.utcoffset() == timedelta(0)
    for part in ("input", "cache_read", "cache_write_5m", "cache_write_1h", "output", "tools"):
        assert str(getattr(got.cost, part)) == str(getattr(event.cost, part))  # same digits, not just equal
    assert ledger.get("no-such-id") is None
    assert list(ledger.events()) == [event]


def test_defaults_round_trip(ledger: Ledger, make_event: EventFactory) -> None:
    event = make_event()
    ledger.append([event])
    assert ledger.get(event.id) == event


def test_time_window_is_since_inclusive_until_exclusive(ledger: Ledger, make_event: EventFactory) -> None:
    events = [make_event(at=T0 + timedelta(hours=h)) for h in range(5)]
    ledger.append(list(reversed(events)))
    got = list(ledger.events(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3)))
    assert [e.id for e in got] == [events[1].id, events[2].id]
    assert [e.id for e in ledger.events()] == [e.id for e in events]  # oldest first
    (row,) = ledger.spend(SpendQuery(since=T0 + timedelta(hours=3)))
    assert row.requests == 2
    assert ledger.spend(SpendQuery(until=T0)) == []


def test_events_pages_through_large_results(ledger: Ledger, make_event: EventFactory) -> None:
    events = [make_event(at=T0) for _ in range(4500)]  # same timestamp: paging must order by id too
    ledger.append(events)
    assert [e.id for e in ledger.events()] == sorted(e.id for e in events)


def test_where_filters_events_and_spend(ledger: Ledger, make_event: EventFactory) -> None:
    ledger.append(
        [make_event(team="growth", agent="a"), make_event(team="growth", agent="b"), make_event(team="search")]
    )
    assert {e.attribution.agent for e in ledger.events(where={"team": "growth"})} == {"a", "b"}
    (row,) = ledger.spend(SpendQuery(where={"team": "growth", "agent": "b"}))
    assert row.requests == 1
    assert list(ledger.events(where={"model": "gpt-4o-mini", "team": "nobody"})) == []


def test_spend_groups_by_any_dimensions_with_exact_sums(ledger: Ledger, make_event: EventFactory) -> None:
    events = [make_event(team="growth", agent="a", cost="0.000000375") for _ in range(1000)]
    events += [make_event(team="growth", agent="b", cost="0.1", model="gpt-4.1") for _ in range(3)]
    events += [make_event(team="search", agent="a", cost="0.2") for _ in range(2)]
    events.append(make_event(cost="0.5"))  # unattributed
    ledger.append(events)

    by_team = {r.group["team"]: r for r in ledger.spend(SpendQuery(by=("team",)))}
    assert by_team["growth"].total_usd == Decimal("0.000375") + Decimal("0.3")
    assert by_team["growth"].requests == 1003
    assert by_team["search"].total_usd == Decimal("0.4")
    assert by_team[None].total_usd == Decimal("0.5")

    rows = ledger.spend(SpendQuery(by=("team", "model")))
    assert [(r.group["team"], r.group["served_model"], r.requests) for r in rows] == [
        (None, "gpt-4o-mini", 1),
        ("search", "gpt-4o-mini", 2),
        ("growth", "gpt-4.1", 3),
        ("growth", "gpt-4o-mini", 1000),
    ]  # most expensive first
    every = SpendQuery(by=(*DIMENSIONS, "provider", "requested_model", "status", "day"))
    assert sum(r.requests for r in ledger.spend(every)) == 1006


def test_server_tool_fees_are_their_own_part_of_spend(ledger: Ledger, make_event: EventFactory) -> None:
    searched = replace(make_event(cost="0.0063"), cost=Cost(input=Decimal("0.0063"), tools=Decimal("0.03")))
    ledger.append([searched, make_event(cost="0.001")])
    (row,) = ledger.spend(SpendQuery())
    assert (row.input_usd, row.tools_usd, row.total_usd) == (Decimal("0.0073"), Decimal("0.03"), Decimal("0.0373"))


def test_sums_keep_more_digits_than_the_default_decimal_context(ledger: Ledger, make_event: EventFactory) -> None:
    big = "12345678901234.000000000000001"  # 29 significant digits
    ledger.append([make_event(cost=big) for _ in range(3)])
    (row,) = ledger.spend(SpendQuery())
    assert str(row.input_usd) == "37037036703702.000000000000003"
    assert row.total_usd == Decimal("37037036703702.000000000000003")


def test_spend_rows_carry_tokens_cache_rate_and_flags(ledger: Ledger, make_event: EventFactory) -> None:
    usage = Usage(input_tokens=100, cache_read_tokens=300, cache_write_5m_tokens=50, cache_write_1h_tokens=50,
                  output_tokens=40, reasoning_tokens=10, estimated=True)  # fmt: skip
    ledger.append(
        [
            make_event(usage=usage, fallback=True),
            make_event(usage=Usage(input_tokens=500), status=CallStatus.ERROR),
            make_event(usage=Usage(), status=CallStatus.BLOCKED, cost="0"),
        ]
    )
    (row,) = ledger.spend(SpendQuery())
    assert (row.input_tokens, row.cache_read_tokens, row.cache_write_tokens) == (600, 300, 100)
    assert (row.output_tokens, row.reasoning_tokens) == (40, 10)
    assert row.cache_hit_rate == Decimal(300) / Decimal(1000)
    assert (row.estimated_events, row.fallback_price_events) == (1, 1)
    assert row.statuses == {"ok": 1, "error": 1, "blocked": 1}


def test_spend_by_day_uses_utc_days(ledger: Ledger, make_event: EventFactory) -> None:
    late = T0.replace(hour=23, minute=59, second=59, microsecond=999999)
    ledger.append([make_event(at=late), make_event(at=late + timedelta(microseconds=1)), make_event(at=late)])
    rows = ledger.spend(SpendQuery(by=("day",)))
    assert [(r.group["day"], r.requests) for r in rows] == [("2026-03-01", 2), ("2026-03-02", 1)]


def test_cost_per_outcome(ledger: Ledger, make_event: EventFactory) -> None:
    ledger.append(
        [
            make_event(agent="support", cost="0.30"),
            make_event(agent="support", cost="0.30"),
            make_event(agent="support", cost="0.40", outcome="resolved_case"),
            make_event(agent="support", cost="0.20", outcome="escalated"),
            make_event(agent="coder", cost="1.00"),
        ]
    )
    rows = {r.group["agent"]: r for r in ledger.spend(SpendQuery(by=("agent",)))}
    assert rows["support"].outcomes == {"resolved_case": 1, "escalated": 1}
    assert rows["support"].cost_per_outcome() == {"escalated": Decimal("1.20"), "resolved_case": Decimal("1.20")}
    assert rows["coder"].outcomes == {}
    assert rows["coder"].cost_per_outcome() == {}


def test_unknown_dimension_is_a_store_error(ledger: Ledger) -> None:
    with pytest.raises(UnknownDimensionError, match="unknown dimension 'colour'"):
        ledger.spend(SpendQuery(by=("colour",)))
    with pytest.raises(StoreError):
        list(ledger.events(where={"day": "2026-01-01"}))


def test_migrations_rerun_and_concurrent_opens(ledger_url: str, make_event: EventFactory) -> None:
    latest = len(migrations("sqlite" if ledger_url.startswith("sqlite") else "postgres"))
    opened: list[Ledger] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def opener() -> None:
        try:
            barrier.wait()
            opened.append(open_ledger(ledger_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    event = make_event()
    opened[0].append([event])
    for led in opened:
        assert led.schema_version() == latest
        led.close()
    with open_ledger(ledger_url) as again:  # re-run on a migrated database changes nothing
        assert again.schema_version() == latest
        assert again.get(event.id) == event


def test_session_outcomes_latest_wins_and_are_idempotent(ledger: Ledger) -> None:
    first = OutcomeRecorded(session="s-1", outcome="escalated", source="sdk", timestamp=T0)
    later = OutcomeRecorded(session="s-1", outcome="resolved", source="admin", timestamp=T0 + timedelta(hours=1))
    other = OutcomeRecorded(session="s-2", outcome="lead_qualified", source="header", workflow="sales", timestamp=T0)
    assert ledger.record_outcomes([later, first, other]) == 3
    assert ledger.record_outcomes([first, later]) == 0  # a retried write keeps nothing twice
    assert ledger.outcomes(["s-1", "s-2", "s-3"]) == {"s-1": "resolved", "s-2": "lead_qualified"}
    assert ledger.outcomes([]) == {}
    many = [f"x-{n}" for n in range(1200)]  # more sessions than one query binds
    ledger.record_outcomes([OutcomeRecorded(session=s, outcome="done", source="sdk") for s in many])
    assert len(ledger.outcomes(many)) == 1200


def test_spend_by_hour_uses_utc_hours(ledger: Ledger, make_event: EventFactory) -> None:
    late = T0.replace(hour=23, minute=59, second=59)
    ledger.append([make_event(at=late), make_event(at=late + timedelta(seconds=1)), make_event(at=late)])
    rows = ledger.spend(SpendQuery(by=("hour",)))
    assert [(r.group["hour"], r.requests) for r in rows] == [("2026-03-01T23", 2), ("2026-03-02T00", 1)]


def test_spend_sums_ungoverned_cost_and_savings_by_lever(ledger: Ledger, make_event: EventFactory) -> None:
    saved = [
        (Decimal("1.00"), Savings(cache=Decimal("0.5"), route=Decimal("0.2"))),
        (Decimal("2.00"), Savings(cache=Decimal("-0.01"), context=Decimal("0.6"), summary=Decimal("0.3"))),
    ]
    events = [replace(make_event(team="a"), ungoverned_usd=ungoverned, saved=savings) for ungoverned, savings in saved]
    refused = make_event(team="a", status=CallStatus.BLOCKED, cost="0")  # refused work: no saving at all
    old = make_event(team="b")  # an event that records no ungoverned cost
    ledger.append([*events, refused, old])
    rows = {row.group["team"]: row for row in ledger.spend(SpendQuery(by=("team",)))}
    a = rows["a"]
    assert a.ungoverned_usd == Decimal("3.00") and a.refused == 1
    assert a.saved == Savings(
        cache=Decimal("0.49"), route=Decimal("0.2"), context=Decimal("0.6"), summary=Decimal("0.3")
    )
    assert a.saved_rate == Decimal("1.59") / Decimal("3.00")
    assert rows["b"].ungoverned_usd == 0 and rows["b"].saved == Savings() and rows["b"].saved_rate == 0
    assert ledger.get(events[1].id) == events[1]


def test_tagged_spend_counts_only_the_events_with_that_tag(ledger: Ledger, make_event: EventFactory) -> None:
    degraded = [
        replace(make_event(cost=c, team=t), tags={"degraded": "budget"}) for c, t in (("0.25", "a"), ("0.5", "b"))
    ]
    plain = [make_event(cost="7", team="a"), replace(make_event(cost="1", team="a"), tags={"degraded": "other"})]
    ledger.append([*degraded, *plain])
    rows = ledger.tagged_spend(SpendQuery(by=("team",)), "degraded", "budget")
    assert {r.group["team"]: (r.requests, r.total_usd) for r in rows} == {
        "a": (1, Decimal("0.25")),
        "b": (1, Decimal("0.5")),
    }
    (only,) = ledger.tagged_spend(SpendQuery(where={"team": "b"}), "degraded", "budget")
    assert only.requests == 1 and only.total_usd == Decimal("0.5")
    assert ledger.tagged_spend(SpendQuery(), "degraded", "nothing") == []
