"""Spend from the rollups equals spend from a full scan of the events, exactly, on every backend — for any
window (aligned to hours and days or not, open or closed), grouping and filter, after late and repeated events."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from fiscus.attribution import Attribution
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.events.savings import LEVERS, Savings
from fiscus.ledger import Ledger, SpendQuery, SpendRow
from fiscus.ledger.rollup import DAY, HOUR, MONTH, Span, covers, split_window
from fiscus.ledger.rows import to_micros
from fiscus.pricing.cost import Cost
from fiscus.usage.model import Usage

START = datetime(2026, 3, 1, tzinfo=UTC)


def _events(n: int, seed: int) -> list[CostEvent]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        at = START + timedelta(seconds=rng.randrange(0, 5 * 86400), microseconds=rng.randrange(1_000_000))
        out.append(
            CostEvent(
                id=f"r{seed}-{i}",
                timestamp=at,
                provider=rng.choice(["openai", "anthropic"]),
                requested_model=rng.choice(["gpt-4.1", "claude-sonnet-4-5"]),
                served_model=rng.choice(["gpt-4.1", "gpt-4.1-mini", "claude-haiku-4-5"]),
                usage=Usage(
                    input_tokens=rng.randrange(5000),
                    cache_read_tokens=rng.randrange(3000),
                    cache_write_5m_tokens=rng.randrange(50),
                    cache_write_1h_tokens=rng.randrange(50),
                    output_tokens=100 + rng.randrange(900),
                    reasoning_tokens=rng.randrange(100),
                    estimated=rng.random() < 0.1,
                ),
                cost=Cost(
                    input=Decimal(rng.randrange(10**9)) / Decimal(10**12),
                    cache_read=Decimal("0.000000018750") * rng.randrange(100),
                    cache_write_5m=Decimal("1E-12") * rng.randrange(10),
                    cache_write_1h=Decimal("0.0000375") * rng.randrange(3),
                    output=Decimal(rng.randrange(10**6)) / Decimal(10**9),
                    fallback_price=rng.random() < 0.05,
                    tools=Decimal("0.01") * rng.randrange(3),
                ),
                ungoverned_usd=Decimal(rng.randrange(10**7)) / Decimal(10**9) if i % 3 else None,
                saved=Savings(cache=Decimal("0.000125") * rng.randrange(9), route=Decimal("1E-9") * rng.randrange(7))
                if i % 3
                else None,
                attribution=Attribution(
                    team=rng.choice(["growth", "search", None]),
                    agent=rng.choice(["triage", "coder", "writer"]),
                    tenant=rng.choice(["acme", "globex", None]),
                    environment=rng.choice(["prod", "staging"]),
                    session=f"s{rng.randrange(40)}",
                    user=rng.choice(["u1", "u2", None]),
                    outcome=rng.choice([None, None, "resolved", "escalated"]),
                ),
                status=rng.choice([CallStatus.OK] * 8 + [CallStatus.ERROR, CallStatus.BLOCKED]),
            )
        )
    return out


def _plain(rows: list[SpendRow]) -> list[dict[str, Any]]:
    """Everything a row holds, Decimals compared by value and exponent alike (str)."""
    out = []
    for r in rows:
        out.append(
            {
                "group": r.group,
                "counts": (
                    r.requests,
                    r.input_tokens,
                    r.cache_read_tokens,
                    r.cache_write_tokens,
                    r.output_tokens,
                    r.reasoning_tokens,
                    r.estimated_events,
                    r.fallback_price_events,
                ),
                "money": tuple(
                    str(v.normalize())
                    for v in (
                        r.input_usd,
                        r.cache_read_usd,
                        r.cache_write_usd,
                        r.output_usd,
                        r.tools_usd,
                        r.total_usd,
                        r.ungoverned_usd,
                        *(getattr(r.saved, lever) for lever in LEVERS),
                    )
                ),
                "statuses": r.statuses,
                "outcomes": r.outcomes,
            }
        )
    return sorted(out, key=repr)


WINDOWS = [
    (None, None),
    (START, None),
    (None, START + timedelta(days=3)),
    (START + timedelta(days=1), START + timedelta(days=3)),  # whole days
    (START + timedelta(hours=5), START + timedelta(days=2, hours=7)),  # whole hours around days
    (START + timedelta(hours=5, minutes=17, seconds=3), START + timedelta(days=3, hours=1, minutes=59)),
    (START + timedelta(hours=30, minutes=10), START + timedelta(hours=30, minutes=50)),  # within one hour
    (START + timedelta(hours=30, minutes=10), START + timedelta(hours=33, minutes=5)),  # no whole day
    (START + timedelta(days=4, minutes=1), None),
]
QUERIES = [
    {"by": ()},
    {"by": ("team",)},
    {"by": ("agent", "model")},
    {"by": ("day", "team")},
    {"by": ("outcome", "status")},
    {"by": ("tenant",), "where": {"environment": "prod"}},
    {"by": ("day",), "where": {"team": "growth", "agent": "coder"}},
    {"by": ("session",)},  # not in the rollup: scanned
    {"by": ("team",), "where": {"user": "u1"}},  # nor this filter
]


def test_rollup_spend_equals_a_full_scan(ledger: Ledger) -> None:
    first, late = _events(900, 1), _events(300, 2)
    for i in range(0, len(first), 128):
        ledger.append(first[i : i + 128])
    # Late events (timestamps among the old ones), repeats of stored events, repeats inside one batch.
    assert ledger.append(late[:150] + first[:100] + late[:20]) == 150
    assert ledger.append(first[500:700]) == 0
    assert ledger.append(late[100:] + late[140:160]) == 150
    for since, until in WINDOWS:
        for spec in QUERIES:
            query = SpendQuery(since=since, until=until, **spec)  # type: ignore[arg-type]
            assert _plain(ledger.spend(query)) == _plain(ledger.spend(query, scan=True)), (since, until, spec)
    (everything,) = ledger.spend(SpendQuery())
    assert everything.requests == 1200


def _us(**kw: int) -> int:
    return to_micros(START + timedelta(**kw))


def test_a_window_splits_into_days_hours_and_minutes() -> None:
    since = START + timedelta(hours=5, minutes=17)
    until = START + timedelta(days=3, hours=1, minutes=59)
    assert list(split_window(since, until)) == [
        Span(None, _us(hours=5, minutes=17), _us(hours=6)),
        Span(HOUR, _us(hours=6), _us(days=1)),
        Span(DAY, _us(days=1), _us(days=3)),
        Span(HOUR, _us(days=3), _us(days=3, hours=1)),
        Span(None, _us(days=3, hours=1), _us(days=3, hours=1, minutes=59)),
    ]
    assert list(split_window(None, None)) == [Span(MONTH, None, None)]
    assert list(split_window(START, None)) == [Span(MONTH, _us(), None)]
    inside = (START + timedelta(minutes=5), START + timedelta(minutes=50))
    assert list(split_window(*inside)) == [Span(None, _us(minutes=5), _us(minutes=50))]


@pytest.mark.parametrize(
    ("by", "where", "expected"),
    [(("team", "day"), {}, True), (("hour",), {}, True), (("model",), {"tenant": "a"}, True), (("session",), {}, False),
     (("team",), {"user": "u"}, False)],
)  # fmt: skip
def test_which_queries_the_rollup_answers(by: tuple[str, ...], where: dict[str, str], expected: bool) -> None:
    assert covers(SpendQuery(by=by, where=where)) is expected
