"""Sessions: attribution, nesting through contextvars, exact ceilings, step limits and the summary event."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import fiscus
from fiscus.events.cost_event import CallStatus
from fiscus.events.guard_events import SessionEnded
from fiscus.guards.loops import LoopConfig
from fiscus.sdk import add_listener, remove_listener

MESSAGES = [{"role": "user", "content": "Research the market."}]


def _ask(client, i: int = 0, max_tokens: int = 200):
    content = f"step {i}: look at source number {i * 17} and report"
    return client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": content}], max_tokens=max_tokens
    )


def test_session_attributes_and_counts_live(openai_client, governed):
    governor, ledger, _, breakers = governed()
    client = fiscus.wrap(openai_client, team="growth", governor=governor, breakers=breakers)
    with fiscus.session(agent="researcher", workflow="competitor-scan") as s:
        _ask(client, 1)
        _ask(client, 2)
        assert s.steps == 2 and s.tokens == sum(e.usage.total_tokens for e in ledger.events)
        assert s.cost == ledger.spent()
    attrs = {e.attribution.session for e in ledger.events}
    assert attrs == {s.id}
    assert all(e.attribution.agent == "researcher" and e.attribution.team == "growth" for e in ledger.events)
    assert s.outcome == "completed" and not s.partial


def test_child_session_nests_and_rolls_up(openai_client, governed):
    governor, ledger, _, breakers = governed()
    client = fiscus.wrap(openai_client, governor=governor, breakers=breakers)
    with fiscus.session(agent="lead", ceiling_usd=5) as parent:
        _ask(client, 1)
        with fiscus.session(agent="sub", ceiling_usd=100) as child:
            _ask(client, 2)
            assert child.remaining() <= parent.remaining() <= Decimal(5)
    sub_event = ledger.events[1]
    assert sub_event.attribution.parent_session == parent.id and sub_event.attribution.agent == "sub"
    assert parent.cost == ledger.spent() and parent.steps == 2 and child.steps == 1


def test_ceiling_is_never_exceeded(openai_client, governed):
    governor, ledger, _, breakers = governed()
    client = fiscus.wrap(openai_client, governor=governor, breakers=breakers)
    ceiling = Decimal("0.0002")
    with fiscus.session(agent="r", ceiling_usd=ceiling) as s:
        replies = [_ask(client, i, max_tokens=400) for i in range(40)]
    assert s.partial and s.outcome == "ceiling"
    assert ledger.spent() <= ceiling and s.cost == ledger.spent()
    assert len(ledger.events) == 40  # calls the ceiling stopped are zero-cost partial events
    assert ledger.events[-1].status is CallStatus.PARTIAL and ledger.events[-1].total_usd == 0
    assert replies[-1].choices[0].finish_reason == "stop"
    assert "exhausted" in replies[-1].choices[0].message.content


def test_child_cannot_spend_past_parent_ceiling(openai_client, governed):
    governor, ledger, _, breakers = governed()
    client = fiscus.wrap(openai_client, governor=governor, breakers=breakers)
    with fiscus.session(agent="lead", ceiling_usd="0.0001") as parent:
        with fiscus.session(agent="sub", ceiling_usd=50) as child:
            for i in range(30):
                _ask(client, i, max_tokens=400)
        assert child.partial
    assert ledger.spent() <= Decimal("0.0001") and parent.cost == ledger.spent()


def test_step_limit_stops_with_partial(openai_client, governed):
    governor, ledger, _, breakers = governed()
    client = fiscus.wrap(openai_client, governor=governor, breakers=breakers)
    with fiscus.session(agent="r", max_steps=3) as s:
        replies = [_ask(client, i) for i in range(5)]
    assert s.outcome == "loop" and "limit of 3 steps" in s.reason
    # every call is one ledger event: the two stopped ones are zero-cost partials that reached no model
    assert [e.status for e in ledger.events] == [CallStatus.OK] * 3 + [CallStatus.PARTIAL] * 2
    assert all(e.total_usd == 0 and e.attribution.session == s.id for e in ledger.events[3:])
    assert "loop detection" in replies[3].choices[0].message.content


def test_loop_raise_action(openai_client, governed):
    governor, _, _, breakers = governed()
    client = fiscus.wrap(openai_client, governor=governor, breakers=breakers)
    with fiscus.session(agent="r", loops=LoopConfig(action="raise", near_duplicate_run=2)) as s:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        except fiscus.LoopDetectedError as exc:
            assert exc.kind == "near_duplicate_request" and exc.state["session"] == s.id
        else:
            raise AssertionError("no LoopDetectedError")


def test_summary_event_on_exit(openai_client, governed):
    governor, _, events, breakers = governed()
    client = fiscus.wrap(openai_client, governor=governor, breakers=breakers)
    seen: list[object] = []
    add_listener(seen.append)
    try:
        with fiscus.session(agent="r", workflow="w", governor=governor) as s:
            _ask(client)
    finally:
        remove_listener(seen.append)
    [summary] = [e for e in seen if isinstance(e, SessionEnded)]
    assert summary.session == s.id and summary.outcome == "completed" and summary.steps == 1
    assert summary.cost == s.cost and summary in events  # also through the governor's on_event
    assert summary.to_dict()["cost_usd"] == format(s.cost, "f")


async def test_async_sessions_are_isolated_per_task(async_openai_client, governed):
    governor, ledger, _, breakers = governed()
    client = fiscus.wrap(async_openai_client, governor=governor, breakers=breakers)

    async def agent(name: str) -> fiscus.Session:
        async with fiscus.session(agent=name) as s:
            for i in range(2):
                await client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": f"{name} {i}"}]
                )
        return s

    a, b = await asyncio.gather(agent("a"), agent("b"))
    assert a.steps == b.steps == 2
    assert {e.attribution.session for e in ledger.events} == {a.id, b.id}
    assert a.cost + b.cost == ledger.spent()
