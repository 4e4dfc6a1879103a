"""Monthly rollups and session rollups answer exactly what a full scan of the events answers, for windows that
cross month (and year) edges, on every backend; a ledger from before them gets both on open."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fiscus.attribution import Attribution
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.ledger import Ledger, SpendQuery, open_ledger
from fiscus.ledger.base import SessionSpend
from fiscus.ledger.rollup import DAY, HOUR, MONTH, ROLLUP_MONEY, Span, split_window
from fiscus.ledger.rows import SAVINGS_COLUMNS, to_micros
from fiscus.ledger.sessions import covers_sessions
from fiscus.pricing.cost import Cost
from fiscus.usage.model import Usage

from .test_rollup import _plain

FIRST = datetime(2025, 12, 20, tzinfo=UTC)  # through January and February into March: two month edges, a year edge
SPAN_DAYS = 80


def _events(n: int, seed: int) -> list[CostEvent]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        at = FIRST + timedelta(seconds=rng.randrange(SPAN_DAYS * 86400), microseconds=rng.randrange(1_000_000))
        session = rng.choice([None, *(f"s{k}" for k in range(30))])
        out.append(
            CostEvent(
                id=f"m{seed}-{i}",
                timestamp=at,
                provider="openai",
                requested_model="gpt-4.1",
                served_model=rng.choice(["gpt-4.1", "gpt-4.1-mini"]),
                usage=Usage(
                    input_tokens=rng.randrange(5000),
                    cache_read_tokens=rng.randrange(3000),
                    cache_write_1h_tokens=rng.randrange(40),
                    output_tokens=rng.randrange(900),
                ),
                cost=Cost(
                    input=Decimal(rng.randrange(10**9)) / Decimal(10**12),
                    cache_read=Decimal("0.000000018750") * rng.randrange(100),
                    cache_write_1h=Decimal("0.0000375") * rng.randrange(3),
                    output=Decimal(rng.randrange(10**6)) / Decimal(10**9),
                    tools=Decimal("0.01") * rng.randrange(2),
                ),
                attribution=Attribution(
                    team=rng.choice(["growth", "search", None]),
                    agent=rng.choice(["triage", "coder"]),
                    workflow=rng.choice(["tickets", "leads"]),
                    task_class=rng.choice(["classify", "draft"]),
                    environment=rng.choice(["prod", "staging"]),
                    session=session,
                    user=rng.choice(["u1", None]),
                    outcome=rng.choice([None, None, "resolved", "failed"]),
                ),
                status=rng.choice([CallStatus.OK] * 8 + [CallStatus.ERROR]),
            )
        )
    return out


def _at(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


WINDOWS = [
    (None, None),
    (_at(1, 1), _at(3, 1)),  # whole months
    (_at(12, 31, 5, 17, year=2025), _at(3, 2, 1, 59)),  # months with days, hours and minutes around them
    (_at(1, 15, 12), _at(2, 14, 3, 30)),  # across one month edge, no whole month
    (_at(1, 31, 23, 10), _at(2, 1, 0, 40)),  # across a month edge within an hour
    (_at(2, 1), None),
    (None, _at(1, 20, 7, 5)),
]
QUERIES: list[dict[str, Any]] = [
    {"by": ()},
    {"by": ("team",)},
    {"by": ("day",)},
    {"by": ("hour", "team")},
    {"by": ("agent", "model"), "where": {"environment": "prod"}},
    {"by": ("outcome", "status")},
]
SESSION_QUERIES: list[dict[str, Any]] = [
    {"by": ()},
    {"by": ("workflow",)},
    {"by": ("team", "agent", "outcome")},
    {"by": ("task_class",), "where": {"environment": "staging"}},
    {"by": ("model",)},  # not a session rollup key: from the events
]


def _sessions(rows: list[SessionSpend]) -> list[tuple[Any, ...]]:
    return sorted(
        (repr(sorted(r.group.items())), r.session or "", r.outcome or "", r.calls, r.tokens, r.cost, r.first)
        for r in rows
    )


def _load(ledger: Ledger) -> None:
    first, late = _events(1200, 5), _events(200, 6)
    for i in range(0, len(first), 200):
        ledger.append(first[i : i + 200])
    assert ledger.append(late + first[:50]) == 200  # late events among the old hours, repeats skipped


def test_month_spans_and_session_spend_equal_a_full_scan(ledger: Ledger) -> None:
    _load(ledger)
    for since, until in WINDOWS:
        for spec in QUERIES:
            query = SpendQuery(since=since, until=until, **spec)
            assert _plain(ledger.spend(query)) == _plain(ledger.spend(query, scan=True)), (since, until, spec)
        for spec in SESSION_QUERIES:
            query = SpendQuery(since=since, until=until, **spec)
            fast, slow = ledger.session_spend(query), ledger.session_spend(query, scan=True)
            assert _sessions(fast) == _sessions(slow), (since, until, spec)
            fast = ledger.session_spend(query, outcomes=False)
            assert _sessions(fast) == _sessions(ledger.session_spend(query, scan=True, outcomes=False))
            assert {s.outcome for s in fast} <= ({None} if "outcome" not in query.by else {None, "resolved", "failed"})
    (everything,) = ledger.spend(SpendQuery())
    whole = ledger.session_spend(SpendQuery())
    assert sum(s.calls for s in whole) == everything.requests == 1400
    assert sum((s.cost for s in whole), Decimal(0)) == everything.total_usd
    assert {s.session for s in whole} == {None, *(f"s{k}" for k in range(30))}


def test_a_ledger_from_before_months_and_sessions_gets_them_on_open(ledger_url: str) -> None:
    with open_ledger(ledger_url) as ledger:
        _load(ledger)
        expected = [_plain(ledger.spend(SpendQuery(by=("team",), since=s, until=u), scan=True)) for s, u in WINDOWS]
        cases = _sessions(ledger.session_spend(SpendQuery(by=("workflow",)), scan=True))
    _back_to_version_6(ledger_url)
    with open_ledger(ledger_url) as ledger:
        assert ledger.schema_version() >= 8
        found = [_plain(ledger.spend(SpendQuery(by=("team",), since=s, until=u))) for s, u in WINDOWS]
        assert found == expected
        assert _sessions(ledger.session_spend(SpendQuery(by=("workflow",)))) == cases


def _back_to_version_6(url: str) -> None:
    """The ledger as schema 6 left it: daily and hourly rollups only, no session rollup, no later index
    nor case summary."""
    statements = [
        "DELETE FROM spend_rollup WHERE grain = 'm'",
        "DROP INDEX session_rollup_singles",
        "DROP TABLE session_rollup",
        "DROP TABLE case_summary",
        "DROP INDEX cost_events_single_calls",
        "DROP INDEX cost_events_degraded_ts",
        "DELETE FROM schema_version WHERE version >= 7",
    ]
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        money = (*ROLLUP_MONEY, *SAVINGS_COLUMNS)
        limbs = [f"ALTER TABLE spend_rollup DROP COLUMN {c}_{part}" for c in money for part in ("hi", "lo")]
        for sql in [*statements, *limbs, "ALTER TABLE spend_rollup DROP COLUMN exact"]:
            conn.execute(sql)
        conn.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as pg:
        for sql in statements:
            pg.execute(sql)


def _us(at: datetime) -> int:
    return to_micros(at)


def test_a_window_splits_into_months_days_hours_and_minutes() -> None:
    since, until = _at(12, 31, 5, 17, year=2025), _at(3, 2, 1, 59)
    assert list(split_window(since, until)) == [
        Span(None, _us(since), _us(_at(12, 31, 6, year=2025))),
        Span(HOUR, _us(_at(12, 31, 6, year=2025)), _us(_at(1, 1))),
        Span(MONTH, _us(_at(1, 1)), _us(_at(3, 1))),
        Span(DAY, _us(_at(3, 1)), _us(_at(3, 2))),
        Span(HOUR, _us(_at(3, 2)), _us(_at(3, 2, 1))),
        Span(None, _us(_at(3, 2, 1)), _us(until)),
    ]
    # No whole month inside: days and hours, the month edge inside a day span.
    assert list(split_window(_at(1, 15, 12), _at(2, 14, 3, 30))) == [
        Span(HOUR, _us(_at(1, 15, 12)), _us(_at(1, 16))),
        Span(DAY, _us(_at(1, 16)), _us(_at(2, 14))),
        Span(HOUR, _us(_at(2, 14)), _us(_at(2, 14, 3))),
        Span(None, _us(_at(2, 14, 3)), _us(_at(2, 14, 3, 30))),
    ]
    open_start = [Span(MONTH, None, _us(_at(2, 1))), Span(DAY, _us(_at(2, 1)), _us(_at(2, 10)))]
    assert list(split_window(None, _at(2, 10))) == open_start
    # A quarter answered from at most ~23 + 30 + 3 + 30 + 23 buckets and two event edges.
    assert len(list(split_window(_at(12, 1, 0, 1, year=2025), _at(3, 31, 23, 59)))) <= 7


def test_which_queries_the_session_rollup_answers() -> None:
    assert covers_sessions(SpendQuery(by=("workflow", "user"), where={"environment": "prod"}))
    assert not covers_sessions(SpendQuery(by=("model",)))
    assert not covers_sessions(SpendQuery(by=("day",)))
    assert not covers_sessions(SpendQuery(by=("team",), where={"status": "ok"}))


def test_amounts_beyond_the_limbs_stay_exact(ledger: Ledger) -> None:
    """An amount with more than 18 decimals (SQLite cannot keep it as integer limbs) is summed from its text."""
    events = _events(60, 9)
    fine = Decimal("0.0000000000000000001234567")  # 25 decimals
    odd = [
        CostEvent(id=f"odd-{i}", timestamp=e.timestamp, provider=e.provider, requested_model=e.requested_model,
                  served_model=e.served_model, usage=e.usage, attribution=e.attribution, status=e.status,
                  cost=Cost(input=fine * (i + 1), output=Decimal("0.5")))
        for i, e in enumerate(events[:20])
    ]  # fmt: skip
    ledger.append(events)
    ledger.append(odd)
    for since, until in WINDOWS:
        for spec in QUERIES[:3]:
            query = SpendQuery(since=since, until=until, **spec)
            assert _plain(ledger.spend(query)) == _plain(ledger.spend(query, scan=True)), (since, until, spec)
        query = SpendQuery(by=("workflow",), since=since, until=until)
        assert _sessions(ledger.session_spend(query)) == _sessions(ledger.session_spend(query, scan=True))
    (total,) = ledger.spend(SpendQuery())
    assert total.input_usd == sum((e.cost.input for e in events), Decimal(0)) + fine * 210
