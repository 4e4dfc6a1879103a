"""The pipeline's sans-IO steps: driven by hand with no store at all, and by both drivers to the same end."""

from __future__ import annotations

import asyncio
from typing import Any

from fiscus.attribution import Attribution
from fiscus.engine import Action
from fiscus.engine.ports import Amounts, Counter, Refusal, Reservation
from fiscus.events import CallStatus
from fiscus.governor.drive import adrive, drive
from fiscus.governor.steps import ReadCounters, Reserve, Settle
from fiscus.usage import Usage

from ._support import governor

NOTIFY = {
    "name": "team",
    "scope": {"team": "growth"},
    "window": "day",
    "limit": {"usd": 1},
    "thresholds": [{"at": 0.5, "action": "notify", "channel": "slack"}, {"at": 1.0, "action": "block"}],
}
ATTR = Attribution(team="growth", user="alice")


def _request(**kw: Any) -> Any:
    from fiscus.governor import CallRequest

    return CallRequest(provider="local", model="big", attribution=ATTR, input_tokens=10_000, max_tokens=1000, **kw)


def test_quiet_admission_is_one_reserve_and_nothing_else() -> None:
    gov, _, _, _ = governor({"budgets": [NOTIFY]})
    steps = gov.admit_steps(_request())
    op = next(steps)
    assert isinstance(op, Reserve)
    granted = Reservation(op.reservation_id, op.lines, op.now + 60)
    try:
        steps.send(granted)
        raise AssertionError("a granted quiet reservation must end the steps")
    except StopIteration as done:
        admission = done.value
    assert admission.reservation is granted and admission.decision.action is Action.ALLOW


def test_a_refusal_reads_counters_decides_again_and_retries() -> None:
    gov, _, _, events = governor({"budgets": [NOTIFY]})
    steps = gov.admit_steps(_request())
    quiet = next(steps)
    assert isinstance(quiet, Reserve)
    read = steps.send(
        Refusal(quiet.lines[0].budget, Amounts(), quiet.lines[0].limits)
    )  # above the first threshold: decide in full
    assert isinstance(read, ReadCounters) and read.keys
    reserve = steps.send({})
    assert isinstance(reserve, Reserve)
    again = steps.send(
        Refusal(reserve.lines[0].budget, Amounts(), reserve.lines[0].limits)
    )  # another caller took the room
    assert isinstance(again, ReadCounters)
    retry = steps.send({key: Counter() for key in again.keys})
    assert isinstance(retry, Reserve)
    try:
        steps.send(Reservation(retry.reservation_id, retry.lines, retry.now + 60))
        raise AssertionError("a granted reservation ends the steps (nothing to announce)")
    except StopIteration as done:
        assert done.value.reservation is not None
    assert events == []


def test_settle_yields_one_settle_after_the_ledger_has_the_event() -> None:
    gov, _, ledger, _ = governor({"budgets": [NOTIFY]})
    admission = gov.admit(_request())
    steps = gov.settle_steps(admission, Usage(input_tokens=10_000, output_tokens=100))
    op = next(steps)
    assert isinstance(op, Settle) and op.reservation is admission.reservation
    assert len(ledger.events) == 1  # recorded before the store is asked
    try:
        steps.send("settled")
    except StopIteration as done:
        assert done.value is ledger.events[0]
    again = gov.settle_steps(admission, Usage(input_tokens=1))
    try:
        next(again)
        raise AssertionError("a second settle asks nothing of the store")
    except StopIteration as done:
        assert done.value is ledger.events[0]


def _script(is_async: bool) -> list[tuple[object, ...]]:
    """The same calls through one driver: decisions, events and budget announcements, ids aside."""
    gov, _, ledger, events = governor({"budgets": [NOTIFY]}, draw=lambda: 0.5)
    seen: list[tuple[object, ...]] = []
    for n in range(12):
        request = _request()
        if is_async:
            admission = asyncio.run(adrive(gov.admit_steps(request), gov.store))
        else:
            admission = drive(gov.admit_steps(request), gov.store)
        d = admission.decision
        seen.append((d.action, d.model, d.max_tokens, d.exhausted_budget, admission.reservation is not None))
        usage = Usage(input_tokens=10_000, output_tokens=1000) if d.calls_model else None
        status = CallStatus.OK if d.calls_model else CallStatus.BLOCKED
        steps = gov.settle_steps(admission, usage, status=status, latency_ms=n)
        event = asyncio.run(adrive(steps, gov.store)) if is_async else drive(steps, gov.store)
        seen.append((event.status, event.cost.total, event.served_model, event.usage))
    seen.extend((type(e).__name__, getattr(e, "threshold", None), e.utilisation) for e in events)  # type: ignore[attr-defined]
    assert len(ledger.events) == 12
    return seen


def test_sync_and_async_drivers_give_identical_decisions_and_events() -> None:
    sync, aio = _script(False), _script(True)
    assert sync == aio
    assert any(row[0] == "BudgetThresholdCrossed" for row in sync)  # the run crossed a threshold and announced it
    assert any(row[0] is Action.DOWNGRADE for row in sync)  # and stepped down the ladder
