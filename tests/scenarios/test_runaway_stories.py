"""The stories behind runaway bills, replayed against the emulator on a simulated clock.

Each asserts the money actually spent, as the exact Decimal sum of the ledger's events."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import pytest

import fiscus
from fiscus.guards.loops import LoopConfig

HOUR = 3600.0


def _say(client, text: str):
    return client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": text}], max_tokens=64
    )


def test_two_agents_in_a_conversation_loop_for_eleven_days_are_stopped(world):
    """A writer and a critic hand the same draft back and forth; every hour, for 11 days (264 hours)."""
    w = world()
    writer = fiscus.wrap(w.client, agent="writer", governor=w.governor, breakers=w.breakers)
    critic = fiscus.wrap(w.client, agent="critic", governor=w.governor, breakers=w.breakers)
    ceiling = Decimal("0.002")
    with fiscus.session(workflow="a2a-research", ceiling_usd=ceiling) as run:
        for _ in range(int(264 / 2)):
            _say(writer, "Here is draft 3 of the market summary. Please review it.")
            _say(critic, "The draft still needs more detail on pricing. Please revise it.")
            w.clock.advance(2 * HOUR)
            if run.partial:
                break
    assert run.outcome == "loop" and "exchanged near-identical messages" in run.reason
    assert w.ledger.provider_calls() == 3  # A, B, A; the fourth message completes the ping-pong
    assert w.ledger.spent() == run.cost <= ceiling


def test_loop_without_loop_guards_stops_exactly_at_the_ceiling(world):
    w = world()
    off = LoopConfig(
        repeat_tool_calls=None,
        near_duplicate_run=None,
        ping_pong_rounds=None,
        no_progress_steps=None,
        no_progress_tokens=None,
    )
    writer = fiscus.wrap(w.client, agent="writer", governor=w.governor, breakers=w.breakers)
    critic = fiscus.wrap(w.client, agent="critic", governor=w.governor, breakers=w.breakers)
    ceiling = Decimal("0.0005")
    attempts = 0
    with fiscus.session(workflow="a2a-research", ceiling_usd=ceiling, loops=off) as run:
        for _ in range(132):  # 11 days, a round every two hours
            _say(writer, "Here is draft 3. Please review it.")
            _say(critic, "Needs more pricing detail. Please revise it.")
            attempts += 2
            w.clock.advance(2 * HOUR)
    assert run.outcome == "ceiling" and attempts == 264
    assert w.ledger.spent() == run.cost
    assert w.ledger.spent() <= ceiling
    one_call = max(e.total_usd for e in w.ledger.events)
    assert ceiling - w.ledger.spent() < 2 * one_call  # it ran until the ceiling, not short of it
    assert w.ledger.provider_calls() < 60


def test_23_subagents_over_a_weekend_stop_at_the_team_daily_cap(world):
    cap = Decimal("0.002")
    budgets = [{"name": "platform-daily", "scope": {"team": "platform"}, "window": "day", "limit": {"usd": cap}}]
    w = world(budgets)
    agents = [
        fiscus.wrap(w.client, agent=f"code-analyst-{i}", team="platform", governor=w.governor, breakers=w.breakers)
        for i in range(23)
    ]
    for hour in range(72):  # Saturday 00:00 to Monday 24:00, unattended
        for i, client in enumerate(agents):
            _say(client, f"Analyse module {i}, pass {hour}: find dead code in file {i * 31 + hour}.")
        w.clock.advance(HOUR)
    per_day: dict[str, Decimal] = defaultdict(Decimal)
    for event in w.ledger.events:
        per_day[event.timestamp.astimezone(UTC).date().isoformat()] += event.total_usd
    assert sorted(per_day) == ["2026-01-03", "2026-01-04", "2026-01-05"]
    one_call = max(e.total_usd for e in w.ledger.events)
    for day, spent in per_day.items():
        assert spent <= cap, day
        assert cap - spent < one_call * 3, day  # each day ran up to the cap, then stopped
    assert w.ledger.spent() == sum(per_day.values()) <= 3 * cap
    # The team's cap refused each call itself: exhaustion opens no breaker (it would outlive the day's reset).
    assert not [e for e in w.breakers.events if e.reason == "budget_exhausted"]


def test_a_retry_storm_after_a_block_does_not_multiply_spend(world):
    budgets = [
        {
            "name": "support-daily",
            "scope": {"agent": "support-bot"},
            "window": "day",
            "limit": {"usd": "0.0003"},
            "thresholds": [{"at": 1.0, "action": "block"}],
        }
    ]
    w = world(budgets)
    bot = fiscus.wrap(w.client, agent="support-bot", governor=w.governor, breakers=w.breakers)
    blocked_at: datetime | None = None
    for i in range(200):
        try:
            _say(bot, f"Customer {i} asks where their parcel is.")
        except fiscus.BudgetBlocked as exc:
            blocked_at = exc.retry_at
            break
        w.clock.advance(60)
    assert blocked_at is not None and blocked_at > datetime.fromtimestamp(w.clock.now, UTC)
    spent_at_block, calls_at_block = w.ledger.spent(), w.ledger.provider_calls()
    storm = 0
    for _ in range(500):  # users and agents retrying, every second, for eight minutes
        storm += 1
        with pytest.raises(fiscus.BudgetBlocked):  # the budget's own refusal, at once, every time
            _say(bot, "Customer asks where their parcel is.")
        w.clock.advance(1)
    assert storm == 500
    assert w.ledger.spent() == spent_at_block <= Decimal("0.0003")
    assert w.ledger.provider_calls() == calls_at_block
