"""The operations batch admission and settling ask a door for, as data, and the two drivers that run them on a
governor: blocking (the SDK's sync clients) or awaiting (the gateway, the SDK's async clients).

Each operation's result is sent back into the steps, or its exception thrown in at that point, as a direct call
would raise it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fiscus.engine.ports import Amounts, Reservation
from fiscus.engine.request import CallRequest
from fiscus.governor import Admission
from fiscus.usage.model import Usage

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Admit:
    """Admit `request` (a task of `request.calls` calls); answered with the `Admission`."""

    request: CallRequest


@dataclass(frozen=True, slots=True)
class Record:
    """Record one request's event (`governor.settle`); answered with the `CostEvent`."""

    admission: Admission
    usage: Usage | None
    outcome: dict[str, Any] = field(default_factory=dict)  # settle's keyword arguments (status, error, tags...)


@dataclass(frozen=True, slots=True)
class Release:
    """Settle a group's reservation at what its requests `spent` (nothing: all of it given back)."""

    reservation: Reservation
    spent: Amounts = field(default_factory=Amounts)


@dataclass(frozen=True, slots=True)
class Hold:
    """Stretch a reservation's lease to `lease_seconds` from now."""

    reservation: Reservation
    lease_seconds: float


BatchOp = Admit | Record | Release | Hold
BatchSteps = Generator[BatchOp, Any, T]
_OPS = (Admit, Record, Release, Hold)


def run(steps: Generator[Any, Any, T], governor: Any, other: Callable[[Any], Any] | None = None) -> T:
    """Run `steps` to completion on the governor's blocking methods; `other` answers the door's own operations."""
    try:
        op = steps.send(None)
        while True:
            try:
                result = run_op(op, governor) if isinstance(op, _OPS) or other is None else other(op)
            except Exception as exc:
                op = steps.throw(exc)
                continue
            op = steps.send(result)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def arun(steps: Generator[Any, Any, T], governor: Any, other: Callable[[Any], Awaitable[Any]] | None = None) -> T:
    """Run `steps` to completion on the governor's async methods; `other` answers the door's own operations."""
    try:
        op = steps.send(None)
        while True:
            try:
                result = await (arun_op(op, governor) if isinstance(op, _OPS) or other is None else other(op))
            except Exception as exc:
                op = steps.throw(exc)
                continue
            op = steps.send(result)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def run_op(op: BatchOp, governor: Any) -> Any:
    """One operation on the governor's blocking methods (for drivers that run steps of their own)."""
    if isinstance(op, Admit):
        return governor.admit(op.request)
    if isinstance(op, Record):
        return governor.settle(op.admission, op.usage, **op.outcome)
    if isinstance(op, Release):
        return governor.store.settle(op.reservation, op.spent, now=governor.now())
    return governor.store.renew(op.reservation, now=governor.now(), lease_seconds=op.lease_seconds)


async def arun_op(op: BatchOp, governor: Any) -> Any:
    if isinstance(op, Admit):
        return await governor.aadmit(op.request)
    if isinstance(op, Record):
        return await governor.asettle(op.admission, op.usage, **op.outcome)
    if isinstance(op, Release):
        return await governor.store.asettle(op.reservation, op.spent, now=governor.now())
    return await governor.store.arenew(op.reservation, now=governor.now(), lease_seconds=op.lease_seconds)
