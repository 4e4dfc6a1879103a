"""The two drivers of the pipeline's steps: each op is run against the budget store, its result sent back.

They are all the difference between the sync and the async door; everything the pipeline decides lives in
the steps (`fiscus.governor.steps`). A store error is thrown into the steps at the operation that failed; steps
that do not handle it pass it on to the caller, as a direct store call would.
"""

from __future__ import annotations

from typing import Any

from fiscus.errors import StoreError
from fiscus.governor.steps import ReadCounters, Record, Reserve, Steps, StoreOp, T
from fiscus.stores.base import BudgetStore


def drive(steps: Steps[T], store: BudgetStore) -> T:
    """Run `steps` to completion on `store`'s blocking methods."""
    send = steps.send
    try:
        op = send(None)
        while True:
            try:
                result = run_op(op, store)
            except StoreError as exc:
                op = steps.throw(exc)
                continue
            op = send(result)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def adrive(steps: Steps[T], store: BudgetStore) -> T:
    """Run `steps` to completion on `store`'s async methods."""
    send = steps.send
    try:
        op = send(None)
        while True:
            try:
                result = await arun_op(op, store)
            except StoreError as exc:
                op = steps.throw(exc)
                continue
            op = send(result)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def run_op(op: StoreOp, store: BudgetStore) -> Any:
    """One store operation on the blocking methods (for drivers that run steps of their own)."""
    kind = type(op)  # exact types: the ops are final, and this is on every admission's path
    if kind is Reserve:
        return store.reserve(op.reservation_id, op.lines, now=op.now, lease_seconds=op.lease_seconds)
    if kind is ReadCounters:
        return store.counters(op.keys, now=op.now)
    if kind is Record:
        return store.record(op.entry_id, op.record)
    return store.settle(op.reservation, op.actual, now=op.now, record=op.record)


async def arun_op(op: StoreOp, store: BudgetStore) -> Any:
    kind = type(op)
    if kind is Reserve:
        return await store.areserve(op.reservation_id, op.lines, now=op.now, lease_seconds=op.lease_seconds)
    if kind is ReadCounters:
        return await store.acounters(op.keys, now=op.now)
    if kind is Record:
        return await store.arecord(op.entry_id, op.record)
    return await store.asettle(op.reservation, op.actual, now=op.now, record=op.record)
