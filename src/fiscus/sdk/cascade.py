"""`fiscus.cascade`: the cheapest model that does the job. The same request goes to each model in turn,
cheapest first, until an answer is accepted; the last model's answer is returned whatever it is.

Pass a governed method (`wrapped.chat.completions.create`, `wrapped.messages.create`, `wrapped.responses.create`)
so every attempt is priced, enforced and recorded as its own call: the ledger shows what the escalations cost.
An answer fiscus made itself (a budget exhausted or a guard: no model was called) ends the cascade at once — a
dearer model would meet the same budget. The default test accepts an answer that finished by itself (not cut at
its token cap, not filtered) and holds text or a tool call; pass `accept` for a task's own test (valid JSON, a
schema, a grader).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from fiscus.errors import FiscusError

R = TypeVar("R")

_CHAT_DONE = ("stop", "tool_calls", "function_call")
_MESSAGES_DONE = ("end_turn", "tool_use", "stop_sequence")


def cascade(
    create: Callable[..., R], *, models: Sequence[str], accept: Callable[[R], bool] | None = None, **kwargs: Any
) -> R:
    """`create(model=m, **kwargs)` for each of `models` until `accept` (default: `finished`) takes the answer."""
    _check(models, kwargs)
    test = accept or finished
    for n, model in enumerate(models):
        answer = create(model=model, **kwargs)
        if n == len(models) - 1 or not model_called(answer) or test(answer):
            return answer
    raise AssertionError("unreachable")  # the last model's answer is always returned


async def acascade(
    create: Callable[..., Awaitable[R]],
    *,
    models: Sequence[str],
    accept: Callable[[R], bool] | None = None,
    **kwargs: Any,
) -> R:
    """`cascade` for an async client's method."""
    _check(models, kwargs)
    test = accept or finished
    for n, model in enumerate(models):
        answer = await create(model=model, **kwargs)
        if n == len(models) - 1 or not model_called(answer) or test(answer):
            return answer
    raise AssertionError("unreachable")


def _check(models: Sequence[str], kwargs: dict[str, Any]) -> None:
    if isinstance(models, str) or not models:
        raise FiscusError("cascade needs a list of models, cheapest first")
    if "model" in kwargs:
        raise FiscusError("cascade picks the model: pass models=[...], not model=")
    if kwargs.get("stream"):
        raise FiscusError("cascade judges whole answers: it cannot stream")


def finished(answer: Any) -> bool:
    """The answer ended by itself (not at its token cap, not filtered) and holds text or a tool call."""
    choices = getattr(answer, "choices", None)
    if choices is not None:  # Chat Completions
        if not choices:
            return False
        choice = choices[0]
        message = choice.message
        return choice.finish_reason in _CHAT_DONE and bool(message.content or message.tool_calls)
    stop_reason = getattr(answer, "stop_reason", None)
    if stop_reason is not None or hasattr(answer, "stop_sequence"):  # Anthropic Messages
        return stop_reason in _MESSAGES_DONE and bool(answer.content)
    status = getattr(answer, "status", None)
    if status is not None:  # Responses
        return status == "completed" and bool(answer.output)
    return True  # a shape this test does not know: take it


def model_called(answer: Any) -> bool:
    """False for an answer fiscus made itself: a partial answer, marked `fiscus` (and no tokens used)."""
    extra = getattr(answer, "model_extra", None)
    if isinstance(extra, dict) and isinstance(extra.get("fiscus"), dict) and extra["fiscus"].get("partial"):
        return False
    usage = getattr(answer, "usage", None)
    if usage is None:
        return True
    used = (
        (getattr(usage, "prompt_tokens", 0) or 0)
        + (getattr(usage, "completion_tokens", 0) or 0)
        + (getattr(usage, "input_tokens", 0) or 0)
        + (getattr(usage, "output_tokens", 0) or 0)
    )
    return used > 0
