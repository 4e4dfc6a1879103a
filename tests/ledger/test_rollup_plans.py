"""A window that ends inside a bucket is read, when that is less, as the whole bucket less its part from the
window's end on (`plan_window`): month to date as the month's rows less what follows. The answer equals a scan
of the events on SQLite and PostgreSQL, also when the part subtracted holds calls, statuses, outcomes and whole
groups the window has none of."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fiscus.attribution import Attribution
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.ledger import SpendQuery, open_ledger
from fiscus.ledger.rollup import DAY, HOUR, MONTH, plan_window, split_window
from fiscus.pricing.cost import Cost
from fiscus.usage.model import Usage

MARCH = datetime(2026, 3, 1, tzinfo=UTC)
NOW = datetime(2026, 3, 30, 21, 37, 12, tzinfo=UTC)


def _traffic() -> list[CostEvent]:
    rng = random.Random(4)
    out = []
    at = MARCH - timedelta(days=3)
    for i in range(2400):
        at += timedelta(seconds=rng.randrange(60, 2400))
        after = at >= NOW
        out.append(
            CostEvent(
                id=f"p{i:05d}",
                timestamp=at,
                provider="openai",
                requested_model="gpt-4.1",
                served_model="gpt-4.1",
                usage=Usage(input_tokens=rng.randrange(1, 900), cache_read_tokens=rng.randrange(50)),
                cost=Cost(input=Decimal(rng.randrange(1, 10**6)) / 10**9, output=Decimal(rng.randrange(9**5)) / 10**12),
                attribution=Attribution(
                    team="late" if after and i % 3 == 0 else rng.choice(["growth", "support"]),  # only after now
                    workflow=rng.choice(["leads", "tickets"]),
                    outcome="refunded" if after and i % 5 == 0 else rng.choice([None, "resolved"]),
                ),
                status=CallStatus.BLOCKED if after and i % 7 == 0 else CallStatus.OK,
            )
        )
    return out


def test_a_window_ending_inside_a_bucket_is_the_bucket_less_the_rest() -> None:
    plan = plan_window(MARCH, NOW)
    assert [s.grain for s, sign in plan if sign > 0] == [MONTH]
    assert {s.grain for s, sign in plan if sign < 0} == {None, HOUR, DAY}
    assert all(sign == 1 for _, sign in plan_window(MARCH, MARCH + timedelta(days=1, hours=2)))
    whole = [(s, 1) for s in split_window(MARCH, NOW)]
    assert plan_window(MARCH, NOW, (HOUR,)) == [(s, 1) for s in split_window(MARCH, NOW, (HOUR,))] != whole


def test_spend_read_as_a_bucket_less_the_rest_equals_a_scan(ledger_url: str) -> None:
    with open_ledger(ledger_url) as led:
        led.append(_traffic())
        windows = [(MARCH, NOW), (NOW - timedelta(days=7), NOW), (NOW - timedelta(hours=5, minutes=3), NOW),
                   (None, NOW), (MARCH + timedelta(hours=13, minutes=2), NOW + timedelta(minutes=1))]  # fmt: skip
        for since, until in windows:
            for by in ((), ("team",), ("day", "workflow"), ("hour",), ("team", "workflow")):
                q = SpendQuery(by=by, since=since, until=until)
                fast = led.spend(q)
                assert fast == led.spend(q, scan=True), (since, until, by)
                assert all(r.requests > 0 for r in fast)
        late = led.spend(SpendQuery(by=("team",), since=MARCH, until=NOW))
        assert "late" not in {r.group["team"] for r in late}
        assert all("blocked" not in r.statuses and "refunded" not in r.outcomes for r in late)
