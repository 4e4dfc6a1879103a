"""One wrapped SDK method call, sync and async: gate → admit → shape → call → observe → settle."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fiscus.errors import FiscusError
from fiscus.events.cost_event import CallStatus
from fiscus.sdk.errors import BudgetExhausted
from fiscus.sdk.gate import Gate, Plan, Short, partial_text
from fiscus.sdk.objects import output_of, partial_object, partial_stream, usage_of
from fiscus.sdk.streams import Observer, observe_async, observe_sync
from fiscus.usage.estimate import estimate_tokens
from fiscus.usage.model import Usage
from fiscus.usage.wire import WireFormat


@dataclass(frozen=True, slots=True)
class Endpoint:
    fmt: WireFormat
    provider: str
    max_keys: tuple[str, ...]  # the output-cap parameter names, preferred first when none is given

    def max_key(self, kwargs: dict[str, Any]) -> str:
        for key in self.max_keys:
            if key in kwargs:
                return key
        return self.max_keys[0]


OPENAI_CHAT = Endpoint(WireFormat.OPENAI_CHAT, "openai", ("max_completion_tokens", "max_tokens"))
OPENAI_RESPONSES = Endpoint(WireFormat.OPENAI_RESPONSES, "openai", ("max_output_tokens",))
ANTHROPIC_MESSAGES = Endpoint(WireFormat.ANTHROPIC, "anthropic", ("max_tokens",))


def _begin(gate: Gate, endpoint: Endpoint, kwargs: dict[str, Any]) -> Plan | Short:
    return gate.prepare(endpoint.fmt, endpoint.provider, kwargs, endpoint.max_key(kwargs))


def _stream_options(plan: Plan) -> None:
    """OpenAI chat streams report usage only when asked: ask, and hide that chunk from a caller who did not."""
    if plan.fmt is not WireFormat.OPENAI_CHAT:
        return
    options = plan.kwargs.get("stream_options") or {}
    plan.caller_wants_usage = bool(options.get("include_usage"))
    if not plan.caller_wants_usage:
        plan.kwargs = {**plan.kwargs, "stream_options": {**options, "include_usage": True}}
        plan.hide_usage_chunk = True


def _answer(short: Short, endpoint: Endpoint, client: Any, stream: bool, is_async: bool, kwargs: dict[str, Any]) -> Any:
    if short.error is not None:
        raise short.error
    text = partial_text(short)
    model = short.model or str(kwargs.get("model", ""))
    if stream:
        wants = bool((kwargs.get("stream_options") or {}).get("include_usage"))
        return partial_stream(endpoint.fmt, client, model=model, text=text, include_usage=wants, is_async=is_async)
    return partial_object(endpoint.fmt, model=model, text=text)


def _whole_usage(plan: Plan, response: Any) -> tuple[Usage, str, tuple[Any, ...]]:
    text, calls = output_of(plan.fmt, response)
    usage = usage_of(plan.fmt, response)
    if usage is None:  # an OpenAI-compatible server that reports none: estimate, flagged
        usage = Usage(input_tokens=plan.input_tokens, output_tokens=estimate_tokens(text), estimated=True)
    return usage, text, calls


def call_sync(gate: Gate, endpoint: Endpoint, fn: Callable[..., Any], client: Any, kwargs: dict[str, Any]) -> Any:
    governor = gate.governor
    stream = bool(kwargs.get("stream"))
    plan = gate.prepare(endpoint.fmt, endpoint.provider, kwargs, endpoint.max_key(kwargs))
    if isinstance(plan, Plan):
        plan = gate.shape(plan, governor.admit(plan.request))
    if isinstance(plan, Short):
        settle_short(governor, plan)
        return _answer(plan, endpoint, client, stream, False, kwargs)
    admission = plan.admission
    if stream:
        _stream_options(plan)
    try:
        response = fn(**plan.kwargs)
    except BaseException as exc:
        plan.after(governor.settle(admission, None, **plan.finish_args(None, error=exc, streamed=stream)))
        raise
    if stream:

        def finish(observer: Observer, error: BaseException | None) -> None:
            usage = observer.result(plan.input_tokens)
            event = governor.settle(admission, usage, **plan.finish_args(usage, error=error, streamed=True))
            text, calls = observer.output()
            plan.after(event, output=text, tool_calls=calls)

        return observe_sync(response, Observer(endpoint.fmt, hide_usage_chunk=plan.hide_usage_chunk), finish)
    usage, text, calls = _whole_usage(plan, response)
    served = plan.kwargs.get("model")  # as `plan.finish_args` gives it, without building the dict
    event = governor.settle(admission, usage, status=CallStatus.OK, served_model=served, error=None, streamed=False)
    plan.after(event, output=text, tool_calls=calls)
    return response


async def call_async(
    gate: Gate, endpoint: Endpoint, fn: Callable[..., Any], client: Any, kwargs: dict[str, Any]
) -> Any:
    governor = gate.governor
    stream = bool(kwargs.get("stream"))
    plan = gate.prepare(endpoint.fmt, endpoint.provider, kwargs, endpoint.max_key(kwargs))
    if isinstance(plan, Plan):
        plan = gate.shape(plan, await governor.aadmit(plan.request))
    if isinstance(plan, Short):
        await asettle_short(governor, plan)
        return _answer(plan, endpoint, client, stream, True, kwargs)
    admission = plan.admission
    if stream:
        _stream_options(plan)
    try:
        response = await fn(**plan.kwargs)
    except BaseException as exc:
        plan.after(await governor.asettle(admission, None, **plan.finish_args(None, error=exc, streamed=stream)))
        raise
    if stream:

        async def finish(observer: Observer, error: BaseException | None) -> None:
            usage = observer.result(plan.input_tokens)
            event = await governor.asettle(admission, usage, **plan.finish_args(usage, error=error, streamed=True))
            text, calls = observer.output()
            plan.after(event, output=text, tool_calls=calls)

        def finish_sync(observer: Observer, error: BaseException | None) -> None:
            usage = observer.result(plan.input_tokens)
            event = governor.settle(admission, usage, **plan.finish_args(usage, error=error, streamed=True))
            plan.after(event)

        observer = Observer(endpoint.fmt, hide_usage_chunk=plan.hide_usage_chunk)
        return observe_async(response, observer, finish, finish_sync)
    usage, text, calls = _whole_usage(plan, response)
    event = await governor.asettle(admission, usage, **plan.finish_args(usage, error=None, streamed=False))
    plan.after(event, output=text, tool_calls=calls)
    return response


def settle_short(governor: Any, short: Short) -> None:
    """Record a call that reaches no model: settle its admission, or record it if it was never admitted."""
    if short.admission is not None:
        governor.settle(short.admission, None, status=short.status)
    elif short.unadmitted is not None and hasattr(governor, "record"):
        governor.record(short.unadmitted, status=short.status, message=short.message)


async def asettle_short(governor: Any, short: Short) -> None:
    if short.admission is not None:
        await governor.asettle(short.admission, None, status=short.status)
    elif short.unadmitted is not None and hasattr(governor, "record"):
        governor.record(short.unadmitted, status=short.status, message=short.message)  # a ledger submit, no I/O


def _refuse_raw(short: Short) -> BaseException:
    return short.error or BudgetExhausted(f"budget exhausted: {short.message}")


def _raw_begin(gate: Gate, endpoint: Endpoint, kwargs: dict[str, Any]) -> Plan | Short:
    if kwargs.get("stream"):
        raise FiscusError("fiscus: with_raw_response.create(stream=True) is not governed; use create(stream=True)")
    return _begin(gate, endpoint, kwargs)


def call_raw_sync(gate: Gate, endpoint: Endpoint, fn: Callable[..., Any], client: Any, kwargs: dict[str, Any]) -> Any:
    """`with_raw_response.create`: the raw response is returned; usage is read from its parsed body.
    A call that reaches no model raises (`BudgetBlocked`, `BudgetExhausted`): there is no raw response to give."""
    governor = gate.governor
    plan = _raw_begin(gate, endpoint, kwargs)
    if isinstance(plan, Plan):
        plan = gate.shape(plan, governor.admit(plan.request))
    if isinstance(plan, Short):
        settle_short(governor, plan)
        raise _refuse_raw(plan)
    try:
        raw = fn(**plan.kwargs)
        usage, text, calls = _whole_usage(plan, raw.parse())
    except BaseException as exc:
        plan.after(governor.settle(plan.admission, None, **plan.finish_args(None, error=exc, streamed=False)))
        raise
    plan.after(
        governor.settle(plan.admission, usage, **plan.finish_args(usage, error=None, streamed=False)),
        output=text,
        tool_calls=calls,
    )
    return raw


async def call_raw_async(
    gate: Gate, endpoint: Endpoint, fn: Callable[..., Any], client: Any, kwargs: dict[str, Any]
) -> Any:
    governor = gate.governor
    plan = _raw_begin(gate, endpoint, kwargs)
    if isinstance(plan, Plan):
        plan = gate.shape(plan, await governor.aadmit(plan.request))
    if isinstance(plan, Short):
        await asettle_short(governor, plan)
        raise _refuse_raw(plan)
    try:
        raw = await fn(**plan.kwargs)
        parsed = raw.parse()  # openai's legacy raw response parses synchronously; anthropic's async one awaits
        if inspect.isawaitable(parsed):
            parsed = await parsed
        usage, text, calls = _whole_usage(plan, parsed)
    except BaseException as exc:
        event = await governor.asettle(plan.admission, None, **plan.finish_args(None, error=exc, streamed=False))
        plan.after(event)
        raise
    event = await governor.asettle(plan.admission, usage, **plan.finish_args(usage, error=None, streamed=False))
    plan.after(event, output=text, tool_calls=calls)
    return raw


__all__ = [
    "ANTHROPIC_MESSAGES",
    "OPENAI_CHAT",
    "OPENAI_RESPONSES",
    "CallStatus",
    "Endpoint",
    "asettle_short",
    "call_async",
    "call_raw_async",
    "call_raw_sync",
    "call_sync",
    "settle_short",
]
