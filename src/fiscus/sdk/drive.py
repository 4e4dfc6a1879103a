"""The SDK's two drivers: they run one call's steps (`fiscus.sdk.calls`), blocking or awaiting.

A call's steps are sans-IO: they yield the governor's store operations and the two things only the wrapped
client can do — call the model (`CallModel`), parse a raw response (`ParseRaw`), have the provider count an
input near a limit (`CountInput`) — and are sent each result, or
have its exception thrown in at the same point, as a direct call would raise it. So the sync and the async
door differ only here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from fiscus.governor.drive import arun_op, run_op
from fiscus.governor.steps import StoreOp
from fiscus.stores.base import BudgetStore

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CallModel:
    """Call the wrapped client's method with `kwargs`; answered with what it returns (awaited when async)."""

    kwargs: dict[str, Any]
    via: Callable[..., Any] | None = None  # instead of the wrapped method: the call routed out of its family


@dataclass(frozen=True, slots=True)
class ParseRaw:
    """Parse a `with_raw_response` result; answered with the parsed body."""

    raw: Any


@dataclass(frozen=True, slots=True)
class CountInput:
    """Have the provider count a request's input (the client's own count method, `fn`); answered with what it
    returns (awaited when async)."""

    fn: Callable[..., Any]
    kwargs: dict[str, Any]


CallOp = StoreOp | CallModel | ParseRaw | CountInput
CallSteps = Generator[CallOp, Any, T]


def run(steps: CallSteps[T], store: BudgetStore, fn: Callable[..., Any] | None = None) -> T:
    send, throw = steps.send, steps.throw
    try:
        op = send(None)
        while True:
            kind = type(op)
            try:
                if kind is CallModel:
                    result = (op.via or fn)(**op.kwargs)  # type: ignore[misc,union-attr]
                elif kind is ParseRaw:
                    result = op.raw.parse()  # type: ignore[union-attr]
                elif kind is CountInput:
                    result = op.fn(**op.kwargs)  # type: ignore[union-attr]
                else:
                    result = run_op(op, store)  # type: ignore[arg-type]
            except BaseException as exc:
                op = throw(exc)
                continue
            op = send(result)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def arun(steps: CallSteps[T], store: BudgetStore, fn: Callable[..., Any] | None = None) -> T:
    send, throw = steps.send, steps.throw
    try:
        op = send(None)
        while True:
            kind = type(op)
            try:
                if kind is CallModel:
                    result = await (op.via or fn)(**op.kwargs)  # type: ignore[misc,union-attr]
                elif kind is ParseRaw:
                    result = op.raw.parse()  # type: ignore[union-attr]
                    if inspect.isawaitable(result):  # openai's legacy raw response parses at once, anthropic's awaits
                        result = await result
                elif kind is CountInput:
                    result = op.fn(**op.kwargs)  # type: ignore[union-attr]
                    if inspect.isawaitable(result):
                        result = await result
                else:
                    result = await arun_op(op, store)  # type: ignore[arg-type]
            except BaseException as exc:
                op = throw(exc)
                continue
            op = send(result)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
