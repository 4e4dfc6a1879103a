"""The case summary (one row per session, kept on write) equals a recomputation from the stored events and
outcomes on SQLite and PostgreSQL — across batches that split sessions, appends retried with ids already kept,
outcomes recorded before and after a session's calls and re-recorded — and so does the summary migration 10
builds for a ledger that had none. The per-case answers that read it equal a scan of the events."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from fiscus.attribution import Attribution
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.events.outcome_event import OutcomeRecorded
from fiscus.ledger import Ledger, SpendQuery, case_sql, open_ledger
from fiscus.ledger.base import MONEY_CONTEXT, cost_total
from fiscus.ledger.case_summary import SUMMARY_KEYS, SUMMARY_TABLE
from fiscus.ledger.cases import HIGH_MEDIAN, LOW_MEDIAN, P50, P95
from fiscus.ledger.migrations import migrations
from fiscus.ledger.rows import to_micros
from fiscus.pricing.cost import Cost
from fiscus.usage.model import Usage
from tests.ledger.comparable import assert_ranks_equal_a_scan, comparable

START = datetime(2026, 4, 6, tzinfo=UTC)
RANKS = (P50, P95, LOW_MEDIAN, HIGH_MEDIAN)
AGENTS = {"triage": ("support", "tickets"), "writer": ("growth", "leads"), "coder": ("platform", "review")}


def _traffic() -> list[CostEvent]:
    """Sessions of one agent (most), a few that change agent or carry two labels, long ones that cross days,
    and calls outside any session."""
    rng = random.Random(3)
    out: list[CostEvent] = []
    for s in range(160):
        agent = rng.choice(list(AGENTS))
        team, workflow = AGENTS[agent]
        at = START + timedelta(seconds=rng.randrange(2 * 86400))
        session = None if s % 10 == 9 else f"s{s:03d}"
        calls = rng.randint(1, 6)
        for i in range(calls):
            at += timedelta(hours=rng.randrange(20)) if s % 17 == 0 else timedelta(seconds=rng.randrange(1, 900))
            label = rng.choice(["resolved", "escalated"]) if i == calls - 1 else None
            if s % 13 == 0 and i == 0:
                label = "failed"  # a second label: the session is mixed
            who = "coder" if s % 11 == 0 and i == 1 else agent  # changes agent mid-session: mixed
            out.append(
                CostEvent(
                    id=f"c{s}-{i}",
                    timestamp=at,
                    provider="openai",
                    requested_model="gpt-4.1",
                    served_model="gpt-4.1",
                    usage=Usage(input_tokens=rng.randrange(4000), output_tokens=rng.randrange(600)),
                    cost=Cost(input=Decimal(rng.randrange(10**7)) / Decimal(10**10), output=Decimal("0.0015")),
                    attribution=Attribution(
                        team=team,
                        agent=who,
                        workflow=workflow,
                        task_class="classify" if s % 2 else "draft",
                        environment="prod" if s % 5 else "staging",
                        tenant=f"t{s % 4}",
                        session=session,
                        outcome=label,
                    ),
                    status=CallStatus.OK,
                )
            )
    return out


def _outcome(n: int, session: str, outcome: str, at: datetime) -> OutcomeRecorded:
    return OutcomeRecorded(id=f"o{n:03d}", timestamp=at, session=session, outcome=outcome, source="admin")


def _fill(led: Ledger) -> list[CostEvent]:
    events = sorted(_traffic(), key=lambda e: e.timestamp)
    early = [_outcome(i, f"s{i:03d}", "resolved", START) for i in range(0, 40, 3)]  # before any call
    led.record_outcomes(early)
    for i in range(0, len(events), 37):  # batches split sessions
        led.append(events[i : i + 37])
    assert led.append(events[50:120]) == 0  # a retried append: nothing counts twice
    later = [_outcome(100 + i, f"s{i:03d}", "failed" if i % 2 else "escalated", START + timedelta(days=3, seconds=i))
             for i in range(0, 60, 4)]  # fmt: skip
    led.record_outcomes(later)
    led.record_outcomes(later[:5] + early[:3])  # recorded again: no change
    led.record_outcomes([_outcome(300, "nobody", "resolved", START)])  # a session with no call at all
    return events


def _expected(events: list[CostEvent], outcomes: dict[str, tuple[int, str, str]]) -> dict[str, tuple[Any, ...]]:
    found: dict[str, dict[str, Any]] = {}
    for e in events:
        a = e.attribution
        if a.session is None:
            continue
        keys = tuple(getattr(a, k) or "" for k in SUMMARY_KEYS)
        at = to_micros(e.timestamp)
        s = found.setdefault(a.session, {"calls": 0, "tokens": 0, "first": at, "last": at, "keys": set(),
                                         "labels": set(), "cost": Decimal(0)})  # fmt: skip
        s["calls"] += 1
        s["tokens"] += e.usage.total_tokens
        s["first"], s["last"] = min(s["first"], at), max(s["last"], at)
        s["keys"].add(keys)
        if a.outcome:
            s["labels"].add(a.outcome)
        s["cost"] = MONEY_CONTEXT.add(s["cost"], cost_total(e))
    out: dict[str, tuple[Any, ...]] = {}
    for name, s in found.items():
        mixed = len(s["keys"]) > 1 or len(s["labels"]) > 1
        shape = None if mixed else (next(iter(s["keys"])), next(iter(s["labels"]), ""))
        recorded = outcomes.get(name, ("", 0, ""))
        out[name] = (s["calls"], s["tokens"], s["first"], s["last"], int(mixed), shape, s["cost"], *recorded)
    for name, recorded in outcomes.items():
        out.setdefault(name, (0, 0, 0, 0, 0, ((("",) * len(SUMMARY_KEYS)), ""), Decimal(0), *recorded))
    return out


def _latest(led: Ledger) -> dict[str, tuple[int, str, str]]:
    """Each session's latest stored outcome (ts µs, outcome, id), from the outcomes table."""
    rows = led.fetch("SELECT session, ts, outcome, id FROM session_outcomes", ())  # type: ignore[attr-defined]
    best: dict[str, tuple[int, str, str]] = {}
    for session, ts, outcome, ident in rows:
        micros = ts if isinstance(ts, int) else to_micros(ts)
        if session not in best or (micros, ident) > (best[session][0], best[session][2]):
            best[session] = (micros, outcome, ident)
    return {s: (v[1], v[0], v[2]) for s, v in best.items()}  # type: ignore[misc]


def _stored(led: Ledger) -> dict[str, tuple[Any, ...]]:
    keys = ", ".join(f'"{k}"' for k in SUMMARY_KEYS)
    sql = (
        f"SELECT session, calls, tokens, first_ts, last_ts, mixed, {keys}, label, cost_usd, recorded, "
        f"recorded_ts, recorded_id FROM {SUMMARY_TABLE}"
    )
    out: dict[str, tuple[Any, ...]] = {}
    n = len(SUMMARY_KEYS)
    for r in led.fetch(sql, ()):  # type: ignore[attr-defined]
        mixed = int(r[5])
        shape = None if mixed else (tuple(r[6 : 6 + n]), r[6 + n])
        cost = Decimal(str(r[7 + n]))
        out[r[0]] = (int(r[1]), int(r[2]), int(r[3]), int(r[4]), mixed, shape, cost, r[8 + n], int(r[9 + n]),
                     r[10 + n])  # fmt: skip
    return out


def _normal(rows: dict[str, tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
    return {k: (*v[:6], v[6].normalize(), *v[7:]) for k, v in rows.items()}


def _answers_equal_a_scan(led: Ledger) -> None:
    windows = [(None, None), (START + timedelta(hours=9, minutes=13), START + timedelta(days=1, hours=17)),
               (START + timedelta(days=1), START + timedelta(days=2)), (START, START + timedelta(hours=2))]  # fmt: skip
    for since, until in windows:
        for where in ({}, {"environment": "prod"}, {"team": "growth"}):
            for by in ((), ("workflow",), ("team", "agent"), ("tenant",)):
                q = SpendQuery(by=by, since=since, until=until, where=where)
                assert comparable(led.case_tallies(q)) == comparable(led.case_tallies(q, scan=True)), (since, by, where)
            q = SpendQuery(by=("team", "workflow", "agent"), since=since, until=until, where=where)
            sets = [(), ("team",), ("agent",), ("team", "agent")]
            assert_ranks_equal_a_scan(led, q, sets, RANKS)


def test_summary_equals_the_events_and_outcomes(ledger_url: str) -> None:
    with open_ledger(ledger_url) as led:
        events = _fill(led)
        stored, expected = _normal(_stored(led)), _normal(_expected(events, _latest(led)))
        assert stored == expected
        assert sum(1 for v in stored.values() if v[4]) >= 10  # mixed sessions are there
        assert sum(1 for v in stored.values() if v[0] and not v[4]) >= 80  # and most are not
        assert stored["nobody"][0] == 0 and stored["nobody"][7] == "resolved"
        _answers_equal_a_scan(led)


def test_answers_with_many_odd_sessions_equal_a_scan(ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(case_sql, "ODD_LIMIT", 0)  # every odd session joined in the database, not named
    with open_ledger(ledger_url) as led:
        _fill(led)
        _answers_equal_a_scan(led)


def test_migration_builds_the_summary_of_stored_events(ledger_url: str) -> None:
    with open_ledger(ledger_url) as led:
        events = _fill(led)
        expected = _normal(_stored(led))
    _forget(ledger_url)
    with open_ledger(ledger_url) as led:
        assert led.schema_version() == len(migrations("sqlite"))
        rebuilt = _normal(_stored(led))
        assert rebuilt == expected == _normal(_expected(events, _latest(led)))
        _answers_equal_a_scan(led)


def _forget(url: str) -> None:
    """Take the ledger back to schema version 9 (no summary nor singles index), as a ledger from before them."""
    forget = (
        f"DROP TABLE {SUMMARY_TABLE}",
        "DROP INDEX session_rollup_singles",
        "DELETE FROM schema_version WHERE version >= 10",
    )
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            for statement in forget:
                conn.execute(statement)
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for statement in forget:
            conn.execute(statement)
