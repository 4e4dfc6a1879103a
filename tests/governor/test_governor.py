from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

from fiscus.attribution import Attribution
from fiscus.engine import Action
from fiscus.engine.ports import Amounts, Counter
from fiscus.events import CallStatus
from fiscus.events.budget_events import BudgetExhausted, BudgetThresholdCrossed
from fiscus.governor import CallRequest, Governor
from fiscus.money import to_nanos
from fiscus.usage import Usage

from ._support import ListLedger, governor

TEAM = {"name": "team", "scope": {"team": "growth"}, "window": "day", "limit": {"usd": 1}}
NOTIFY = {
    "name": "team",
    "scope": {"team": "growth"},
    "window": "day",
    "limit": {"usd": 1},
    "thresholds": [
        {"at": 0.5, "action": "notify", "channel": "slack"},
        {"at": 0.8, "action": "warn"},
        {"at": 1.0, "action": "block"},
    ],
}
ATTR = Attribution(team="growth", user="alice", agent="resolver")


def call(model: str = "big", **kw: object) -> CallRequest:
    kw.setdefault("input_tokens", 10_000)
    kw.setdefault("max_tokens", 1000)
    return CallRequest(provider="local", model=model, attribution=kw.pop("attribution", ATTR), **kw)  # type: ignore[arg-type]


def run(gov: Governor, request: CallRequest, usage: Usage) -> tuple[object, object]:
    """Admit, then settle with what a provider would bill: never more output than the (clamped) cap, nor more
    input than the compression target."""
    admission = gov.admit(request)
    decision = admission.decision
    if decision.calls_model:
        billed = Usage(
            input_tokens=min(usage.input_tokens, decision.compress_to_tokens or usage.input_tokens),
            output_tokens=min(usage.output_tokens, decision.max_tokens),
        )
        return admission, gov.settle(admission, billed)
    status = CallStatus.PARTIAL if admission.decision.action is Action.PARTIAL else CallStatus.BLOCKED
    return admission, gov.settle(admission, None, status=status)


def spent_nanos(gov: Governor, key: str, now: float) -> Counter:
    return gov.store.counters((key,), now=now)[key]


def test_reserve_settle_and_counters_equal_the_sum_of_recorded_costs() -> None:
    gov, clock, ledger, _ = governor({"budgets": [NOTIFY]})
    usage = Usage(input_tokens=10_000, output_tokens=400)  # $0.10 + $0.012
    for _ in range(12):
        run(gov, call(), usage)
        clock.now += 1
    (status,) = gov.status()
    recorded = sum(to_nanos(e.cost.total) for e in ledger.events)
    assert status.spent.nanos == recorded and status.reserved == Amounts()
    assert status.spent.nanos <= 1_000_000_000  # never past the limit
    blocked = [e for e in ledger.events if e.status is CallStatus.BLOCKED]
    assert blocked and all(e.cost.total == 0 and e.usage.total_tokens == 0 for e in blocked)
    assert {e.decision for e in blocked} == {"block"}
    assert all(e.id == e.id and e.attribution == ATTR for e in ledger.events)


def test_thresholds_fire_once_per_window_and_again_in_the_next() -> None:
    gov, clock, _, events = governor({"budgets": [NOTIFY]})
    usage = Usage(input_tokens=10_000, output_tokens=400)
    for _ in range(12):
        run(gov, call(), usage)
    crossed = [(type(e).__name__, getattr(e, "action", None)) for e in events]
    assert crossed.count(("BudgetThresholdCrossed", "notify")) == 1
    assert crossed.count(("BudgetThresholdCrossed", "warn")) == 1
    assert crossed.count(("BudgetExhausted", "block")) == 1
    notify = next(e for e in events if isinstance(e, BudgetThresholdCrossed) and e.action == "notify")
    assert notify.channel == "slack" and notify.threshold == Decimal("0.5")
    clock.now += 86_400  # the next day: a new window, fresh announcements
    events.clear()
    for _ in range(6):
        run(gov, call(), usage)
    assert [e.action for e in events if isinstance(e, BudgetThresholdCrossed)] == ["notify"]


def test_fire_once_holds_across_governors_sharing_a_store() -> None:
    gov_a, clock, _, events_a = governor({"budgets": [NOTIFY]})
    gov_b, _, _, events_b = governor({"budgets": [NOTIFY]}, store=gov_a.store)
    gov_b._clock = clock  # same simulated time
    usage = Usage(input_tokens=10_000, output_tokens=400)
    for _ in range(5):
        run(gov_a, call(), usage)
    run(gov_a, call(), usage)
    run(gov_b, call(), usage)
    both = [e for e in events_a + events_b if isinstance(e, BudgetThresholdCrossed) and e.action == "notify"]
    assert len(both) == 1


def test_downgrade_one_tier_and_served_model_priced() -> None:
    gov, _, ledger, _ = governor({"budgets": [TEAM]})
    key = "b:team|day:" + datetime.fromtimestamp(gov._clock(), UTC).date().isoformat()
    gov.store.reserve("seed", (), now=gov._clock(), lease_seconds=1)
    first = gov.admit(call())
    gov.settle(first, Usage(input_tokens=10_000, output_tokens=1000))
    # Push utilisation to 0.9: downgrade + compress on the default thresholds.
    while gov.status()[0].utilisation < Decimal("0.9"):
        run(gov, call(max_tokens=100), Usage(input_tokens=10_000, output_tokens=100))
    admission = gov.admit(call())
    assert admission.decision.model == "small" and admission.decision.downgraded
    assert admission.decision.compress_to_tokens == 5000
    event = gov.settle(admission, Usage(input_tokens=5000, output_tokens=10))
    assert event.served_model == "small" and event.requested_model == "big" and event.model_tier == "small"
    assert event.cost.total == Decimal("0.00503")
    assert spent_nanos(gov, key, gov._clock()).spent.nanos == sum(to_nanos(e.cost.total) for e in ledger.events)


def test_settle_is_idempotent_and_late_settle_still_counts() -> None:
    gov, clock, ledger, _ = governor({"budgets": [TEAM]}, lease_seconds=10)
    admission = gov.admit(call())
    assert gov.renew(admission)
    clock.now += 60  # lease expired: the reservation went back to the pool
    (status,) = gov.status()
    assert status.reserved == Amounts()
    event = gov.settle(admission, Usage(input_tokens=1000, output_tokens=10))
    again = gov.settle(admission, Usage(input_tokens=9999, output_tokens=9999))
    assert again is event and len(ledger.events) == 1
    assert gov.status()[0].spent.nanos == to_nanos(event.cost.total)
    assert not gov.renew(admission)


def test_unbudgeted_call_is_recorded_and_failed_call_costs_nothing() -> None:
    gov, _, ledger, _ = governor({"budgets": [TEAM]})
    other = call(attribution=Attribution(team="core"))
    admission = gov.admit(other)
    assert admission.decision.action is Action.ALLOW and admission.reservation is not None
    gov.settle(admission, Usage(input_tokens=10, output_tokens=1))
    failed = gov.admit(call())
    event = gov.settle(failed, None, status=CallStatus.ERROR, error="upstream 500")
    assert event.cost.total == 0 and event.status is CallStatus.ERROR
    assert gov.status()[0].spent.nanos == 0 and gov.status()[0].reserved == Amounts(requests=0)
    assert len(ledger.events) == 2


def test_async_admit_and_settle() -> None:
    gov, _, ledger, _ = governor({"budgets": [TEAM]})

    async def go() -> None:
        admission = await gov.aadmit(call())
        await gov.asettle(admission, Usage(input_tokens=1000, output_tokens=10))

    asyncio.run(go())
    assert gov.status()[0].spent.nanos == to_nanos(ledger.events[0].cost.total) > 0


def test_preflight_refusal_has_retry_at_the_window_reset() -> None:
    gov, clock, _, events = governor({"budgets": [NOTIFY]})
    admission = gov.admit(call(calls=100))  # 100 × $0.13 worst case
    assert admission.decision.action is Action.BLOCK and admission.reservation is None
    reset = datetime.fromtimestamp(clock.now, UTC).date()
    assert admission.decision.retry_at is not None and admission.decision.retry_at.date() > reset
    assert "a task of 100 calls" in admission.decision.message
    assert [type(e) for e in events] == [BudgetExhausted]


def test_per_user_status_lists_instances_when_the_store_can() -> None:
    gov, _, _, _ = governor({"budgets": [{"name": "u", "scope": {"user": "*"}, "window": "day", "limit": {"usd": 1}}]})
    for user in ("alice", "bob"):
        run(gov, call(attribution=Attribution(user=user)), Usage(input_tokens=1000, output_tokens=10))
    try:
        gov.store.keys_with_prefix("b:", now=gov._clock())
    except NotImplementedError:
        assert gov.status() == []
        return
    assert [dict(s.values)["user"] for s in gov.status()] == ["alice", "bob"]


def test_close_flushes_the_ledger() -> None:
    gov, _, ledger, _ = governor({"budgets": [TEAM]})
    gov.close()
    assert isinstance(ledger, ListLedger) and ledger.flushed
