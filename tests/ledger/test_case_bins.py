"""Case ranks from bins: the bin function keeps order and is the same in Python and in both databases' SQL, the
bins each summary row stores equal a recomputation from its values (kept by every write, and built by the
migration for a ledger that had none), and ranks and run statistics picked from bins equal a scan of the events
when many sessions share a bin and tie."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fiscus.attribution import Attribution
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.ledger import Ledger, SpendQuery, open_ledger
from fiscus.ledger.case_bins import bin_of, bin_sql, locate, pick
from fiscus.ledger.cases import HIGH_MEDIAN, LOW_MEDIAN, P50, P95, Rank, positions
from fiscus.ledger.migrations import migrations
from fiscus.pricing.cost import Cost
from fiscus.usage.model import Usage
from tests.ledger.comparable import assert_ranks_equal_a_scan

START = datetime(2026, 5, 4, tzinfo=UTC)
RANKS = (P50, P95, LOW_MEDIAN, HIGH_MEDIAN, Rank.nearest("0.99"))
EDGES = [0, 1, 999, 1000, 1009, 1010, 9999, 10_000, 123_456, 999_999, 10**15, 10**16 - 1, 10**16, 10**20]


def test_bins_keep_order_and_sql_spells_the_same_function() -> None:
    values = sorted({*EDGES, *(e - 1 for e in EDGES), *(e + 1 for e in EDGES), -5, -(10**9)})
    bins = [bin_of(v) for v in values]
    assert bins == sorted(bins)
    assert bin_of(999) == 999 and bin_of(1000) == bin_of(1009) == 4100 and bin_of(1010) == 4101
    conn = sqlite3.connect(":memory:")
    for v in values:
        assert conn.execute(f"SELECT {bin_sql(str(v))}").fetchone()[0] == bin_of(v), v


@given(st.lists(st.integers(min_value=-50, max_value=10**7), min_size=1, max_size=300))
def test_locate_and_pick_give_the_sorted_values_ranks(values: list[int]) -> None:
    counts: dict[str, dict[int, int]] = {"g": {}}
    held: dict[tuple[str, int], list[int]] = {}
    for v in values:
        b = bin_of(v)
        counts["g"][b] = counts["g"].get(b, 0) + 1
        held.setdefault(("g", b), []).append(v)
    located = locate(counts, RANKS)
    chosen = pick(located, held, {k: len(v) for k, v in held.items()})
    ordered = sorted(values)
    assert chosen is not None and located["g"][0] == len(values)
    assert chosen["g"] == {p: ordered[p - 1] for p in positions(len(values), RANKS)}


def test_pick_says_when_a_bin_changed_between_the_reads() -> None:
    located = locate({"g": {5: 2}}, (P50,))
    assert pick(located, {("g", 5): [5]}, {("g", 5): 2}) is None


def _traffic(seed: int = 5) -> list[CostEvent]:
    """Sessions whose costs crowd a few bins (many equal, many a pico-dollar apart), some crossing days and
    hours, a few that change agent, and calls outside sessions."""
    rng = random.Random(seed)
    out: list[CostEvent] = []
    agents = {"triage": ("support", "tickets"), "writer": ("growth", "leads"), "coder": ("platform", "review")}
    for s in range(260):
        agent = rng.choice(list(agents))
        team, workflow = agents[agent]
        at = START + timedelta(seconds=rng.randrange(3 * 86400))
        session = None if s % 12 == 11 else f"b{s:03d}"
        calls = rng.choice([1, 2, 2, 3, 3, 3, 12])
        for i in range(calls):
            at += timedelta(hours=rng.randrange(30)) if s % 23 == 0 else timedelta(seconds=rng.randrange(1, 600))
            base = Decimal("0.0012") if rng.random() < 0.5 else Decimal("0.0012") + Decimal(rng.randrange(4)) / 10**12
            out.append(
                CostEvent(
                    id=f"e{s}-{i}",
                    timestamp=at,
                    provider="openai",
                    requested_model="gpt-4.1",
                    served_model="gpt-4.1",
                    usage=Usage(input_tokens=rng.choice([100, 100, 101, 5000]), output_tokens=rng.choice([0, 7])),
                    cost=Cost(input=base, output=Decimal(rng.choice([0, 0, 1, 9])) / 10**7),
                    attribution=Attribution(
                        team=team,
                        agent="coder" if s % 29 == 0 and i == 1 else agent,
                        workflow=workflow,
                        task_class="classify" if s % 3 else "draft",
                        environment="prod" if s % 4 else "staging",
                        session=session,
                    ),
                    status=CallStatus.OK,
                )
            )
    return sorted(out, key=lambda e: e.timestamp)


def _answers_equal_a_scan(led: Ledger) -> None:
    windows = [(None, None), (START, START + timedelta(days=3)), (START + timedelta(hours=7, minutes=5),
               START + timedelta(days=2, hours=3))]  # fmt: skip
    for since, until in windows:
        for where in ({}, {"task_class": "draft"}):
            q = SpendQuery(by=("team", "workflow", "agent"), since=since, until=until, where=where)
            sets: Sequence[tuple[str, ...]] = [(), ("team",), ("workflow",), ("agent",), ("team", "agent")]
            assert_ranks_equal_a_scan(led, q, sets, RANKS)


def _bins(led: Ledger) -> list[tuple[Any, ...]]:
    rows = led.fetch("SELECT session, cost_usd, tokens, calls, cost_bin, tokens_bin, calls_bin FROM case_summary", ())  # type: ignore[attr-defined]
    return sorted(tuple(r) for r in rows)


def _check_bins(led: Ledger) -> None:
    rows = _bins(led)
    assert rows
    for session, cost, tokens, calls, cost_bin, tokens_bin, calls_bin in rows:
        n, d = Decimal(str(cost)).as_integer_ratio()
        assert (cost_bin, tokens_bin, calls_bin) == (bin_of(n * 10**6 // d), bin_of(tokens), bin_of(calls)), session


def test_bins_equal_a_recomputation_and_ranks_from_crowded_bins_equal_a_scan(ledger_url: str) -> None:
    with open_ledger(ledger_url) as led:
        events = _traffic()
        for i in range(0, len(events), 41):  # batches split sessions, so rows move between bins
            led.append(events[i : i + 41])
        _check_bins(led)
        crowded = [r[4] for r in _bins(led)]
        assert max(crowded.count(b) for b in crowded) >= 20  # many sessions share a bin
        _answers_equal_a_scan(led)


def test_migration_builds_the_bins_of_a_ledger_without_them(ledger_url: str) -> None:
    with open_ledger(ledger_url) as led:
        led.append(_traffic(seed=8))
        before = _bins(led)
    _forget_bins(ledger_url)
    with open_ledger(ledger_url) as led:
        assert led.schema_version() == len(migrations("sqlite"))
        assert _bins(led) == before
        _check_bins(led)
        _answers_equal_a_scan(led)


def _forget_bins(url: str) -> None:
    """Take the ledger back to schema version 11 (a case summary without bins)."""
    forget = [f"DROP INDEX case_summary_{c}" for c in ("cost_bin", "tokens_bin", "calls_bin")]
    if url.startswith("sqlite"):
        forget += [f"ALTER TABLE case_summary DROP COLUMN {c}" for c in ("cost_bin", "tokens_bin", "calls_bin")]
        forget.append("DELETE FROM schema_version WHERE version >= 12")
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            for statement in forget:
                conn.execute(statement)
        return
    import psycopg

    forget.append("ALTER TABLE case_summary DROP COLUMN cost_bin, DROP COLUMN tokens_bin, DROP COLUMN calls_bin")
    forget.append("DELETE FROM schema_version WHERE version >= 12")
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in forget:
            conn.execute(statement)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_migrations_spell_the_bin_function(backend: str) -> None:
    (migration,) = (m for m in migrations(backend) if m.name == "case_bins")
    text = " ".join(migration.statements)
    cost = "cost_usd_hi" if backend == "sqlite" else "floor(cost_usd * 1000000)"
    div = "{a} / {b}" if backend == "sqlite" else "div({a}, {b})"
    for value in (cost, "tokens", "calls"):
        assert bin_sql(value, div) in text
