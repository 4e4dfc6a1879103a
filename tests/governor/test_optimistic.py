"""The optimistic admission: one store reservation for a call no budget has a word on; a refusal sends the
shape's calls to the full decision (counters, decide, reserve) until the shape is rebuilt."""

from __future__ import annotations

import asyncio
from collections import Counter as Tally

from fiscus.engine import Action
from fiscus.engine.ports import Counter, Refusal, Reservation, ReserveLine
from fiscus.events.budget_events import BudgetThresholdCrossed
from fiscus.stores import MemoryStore
from fiscus.usage import Usage

from ._support import governor
from .test_governor import NOTIFY, call


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.calls: Tally[str] = Tally()

    def reserve(
        self, reservation_id: str, lines: tuple[ReserveLine, ...], *, now: float, lease_seconds: float
    ) -> Reservation | Refusal:
        result = super().reserve(reservation_id, lines, now=now, lease_seconds=lease_seconds)
        self.calls["reserve" if isinstance(result, Reservation) else "refused"] += 1
        return result

    def counters(self, keys: tuple[str, ...], *, now: float) -> dict[str, Counter]:
        self.calls["counters"] += 1
        return super().counters(keys, now=now)


USAGE = Usage(input_tokens=10_000, output_tokens=400)  # $0.112 of a $1 budget


def test_quiet_calls_take_one_reservation_and_a_threshold_sends_them_to_the_full_decision() -> None:
    store = CountingStore()
    gov, clock, ledger, events = governor({"budgets": [NOTIFY]}, store=store)
    for _ in range(4):  # $0.112 spent a call, $0.13 reserved: each stays below the 0.5 notify threshold
        admission = gov.admit(call())
        assert admission.decision.action is Action.ALLOW and admission.decision.reasons == ()
        gov.settle(admission, USAGE)
        clock.now += 1
    assert store.calls == {"reserve": 4}  # no counters read: the reservation was the decision
    crossing = gov.admit(call())  # $0.448 + $0.13 would reach $0.50: refused optimistically, decided in full
    assert store.calls["refused"] == 1 and store.calls["counters"] == 1
    assert crossing.decision.action is Action.ALLOW and crossing.reservation is not None
    gov.settle(crossing, USAGE)
    notified = gov.admit(call())  # past 0.5: the shape is loud, straight to the full decision
    assert notified.decision.action is Action.NOTIFY and [r.budget for r in notified.decision.reasons] == ["team"]
    assert store.calls["refused"] == 1 and store.calls["counters"] == 2
    assert [type(e) for e in events] == [BudgetThresholdCrossed]
    gov.settle(notified, USAGE)
    clock.now += 86_400  # the next day: a new window, a new shape, quiet again
    gov.settle(gov.admit(call()), USAGE)
    assert store.calls["counters"] == 2 and store.calls["reserve"] == 8  # 7 calls and the notify's fire-once claim
    assert len(ledger.events) == 7


def test_async_admission_takes_the_same_paths() -> None:
    store = CountingStore()
    gov, clock, ledger, events = governor({"budgets": [NOTIFY]}, store=store)

    async def go() -> list[Action]:
        actions = []
        for _ in range(7):
            admission = await gov.aadmit(call())
            actions.append(admission.decision.action)
            await gov.asettle(admission, USAGE)
            clock.now += 1
        return actions

    actions = asyncio.run(go())
    assert actions == [Action.ALLOW] * 5 + [Action.NOTIFY] * 2
    assert store.calls == {"reserve": 8, "refused": 1, "counters": 3}  # 7 calls and the fire-once claim
    assert len(events) == 1 and len(ledger.events) == 7
