"""One wrapped SDK method call: gate → admit → shape → call → observe → settle, written once.

`call_steps` and `raw_steps` are sans-IO generators (see `fiscus.sdk.drive`): the same steps serve the sync
and the async client, and the framework callbacks (`fiscus.sdk.observed`) reuse `admit_steps`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from fiscus.errors import FiscusError, UsageFormatError
from fiscus.events.cost_event import CallStatus
from fiscus.governor.steps import Steps
from fiscus.sdk import across, response_cache
from fiscus.sdk.drive import CallModel, CallSteps, CountInput, ParseRaw, arun, run
from fiscus.sdk.exchange import partial_exchange
from fiscus.sdk.gate import Gate, Plan, Short, partial_text
from fiscus.sdk.objects import output_of, partial_object, partial_stream, usage_of
from fiscus.sdk.override_grants import announce_steps
from fiscus.sdk.streams import Observer, observe_async, observe_sync
from fiscus.sdk.summaries import summary_steps, with_summary
from fiscus.shaping.partial import BUDGET_EXHAUSTED
from fiscus.shaping.response_cache import CachedAnswer
from fiscus.usage import openai_chat
from fiscus.usage.estimate import estimate_tokens, estimator_name
from fiscus.usage.exact import anthropic_count_body, anthropic_counted, count_bound
from fiscus.usage.model import Usage, UsageDetail
from fiscus.usage.wire import WireFormat

Pick = Callable[[Any], Callable[..., Any]]  # a crossed resource → the method that stands for the door's own


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
    marker = {"code": short.code, "message": short.message, "retry_after": short.retry_after}
    if stream:
        wants = bool((kwargs.get("stream_options") or {}).get("include_usage"))
        return partial_stream(
            endpoint.fmt, client, model=model, text=text, include_usage=wants, is_async=is_async, **marker
        )
    return partial_object(endpoint.fmt, model=model, text=text, **marker)


def answer_exchange(
    short: Short, endpoint: Endpoint, client: Any, kwargs: dict[str, Any], kind: str, is_async: bool
) -> Any:
    """A call through `with_raw_response` / `with_streaming_response` that reaches no model: raise the refusal,
    or hand back the SDK's own response object for the partial answer (see `fiscus.sdk.exchange`)."""
    if short.error is not None:
        raise short.error
    headers = partial_headers(short)
    return partial_exchange(
        client,
        endpoint.fmt,
        kind=kind,
        kwargs=kwargs,
        model=short.model or str(kwargs.get("model", "")),
        text=partial_text(short),
        code=short.code,
        message=short.message,
        retry_after=short.retry_after,
        is_async=is_async,
        extra_headers=headers,
    )


def partial_headers(short: Short) -> dict[str, str]:
    """The headers the gateway sends beside a partial answer (besides `x-fiscus-partial`)."""
    headers = {"x-fiscus-budget": "exhausted"} if short.code == BUDGET_EXHAUSTED else {}
    if short.admission is not None:
        headers["x-fiscus-request-id"] = short.admission.event_id
    if short.retry_after is not None:
        headers["retry-after"] = str(short.retry_after)
    return headers


def _whole_usage(plan: Plan, response: Any) -> tuple[Usage, str, tuple[Any, ...]]:
    text, calls = output_of(plan.fmt, response)
    why = "the provider reported no usage"
    try:
        usage = usage_of(plan.fmt, response)
    except (UsageFormatError, TypeError, ValueError) as exc:
        # The model was called and answered: the caller gets its answer, the call an estimate that says why.
        usage, why = None, f"the provider's usage report was malformed ({_malformed(plan.fmt, response, exc)})"
    if usage is None:  # e.g. an OpenAI-compatible server that reports none: estimate, flagged
        output = estimate_tokens(text) + sum(estimate_tokens(str(args)) for _, args in calls)
        how = f"{why}: input counted from the request, output from the answer's text ({estimator_name()})"
        detail = UsageDetail(estimate=how)
        usage = Usage(input_tokens=plan.input_tokens, output_tokens=output, estimated=True, detail=detail)
    return usage, text, calls


def _malformed(fmt: WireFormat, response: Any, exc: Exception) -> str:
    """The reader's own words for a bad count (the fast chat path fails on types before it can say which)."""
    if isinstance(exc, UsageFormatError) or fmt is not WireFormat.OPENAI_CHAT:
        return str(exc)
    try:
        openai_chat.usage_from_fields(response.usage.model_dump(warnings=False))
    except UsageFormatError as reason:
        return str(reason)
    except Exception:
        pass
    return str(exc)


# -- the steps ------------------------------------------------------------------------------------------


def admit_steps(gate: Gate, prepared: Plan | Short, count: Callable[..., Any] | None = None) -> CallSteps[Plan | Short]:
    """Admit a prepared call and shape it by the decision; a call that reaches no model is settled here.
    `count`: the client's own input count (Anthropic's `messages.count_tokens`), asked only when near a limit
    the byte bound alone would stop the call (`fiscus.usage.exact`)."""
    plan = prepared
    if isinstance(plan, Plan):
        request = plan.request if count is None else replace(plan.request, countable=True)
        admission = yield from gate.governor.admit_steps(request)
        if admission.decision.count_helps:
            counted = yield from _count_steps(count, plan.kwargs)  # type: ignore[arg-type]
            request = request.counted(counted, count_bound(counted)) if counted is not None else plan.request
            admission = yield from gate.governor.admit_steps(request)
            plan.request = request
        if admission.decision.override_ids:
            yield from announce_steps(gate.governor, admission)
        plan = gate.shape(plan, admission)
    if isinstance(plan, Short):
        yield from short_steps(gate.governor, plan)
    return plan


def _count_steps(count: Callable[..., Any], kwargs: dict[str, Any]) -> CallSteps[int | None]:
    """The provider's count of this request's input; None when it cannot say (the byte bound then stands)."""
    try:
        body = anthropic_count_body(kwargs)
        if kwargs.get("extra_headers"):  # beta flags count as they run
            body["extra_headers"] = kwargs["extra_headers"]
        answer = yield CountInput(count, body)
    except Exception:
        return None
    return anthropic_counted(answer)


def counter(endpoint: Endpoint, client: Any) -> Callable[..., Any] | None:
    """The wrapped client's own input count for this endpoint, if it has one."""
    if endpoint is not ANTHROPIC_MESSAGES:
        return None
    messages = getattr(client, "messages", None)
    return getattr(messages, "count_tokens", None)


def _admit_crossing(gate: Gate, endpoint: Endpoint, kwargs: dict[str, Any], client: Any) -> CallSteps[Plan | Short]:
    """`admit_steps` for a call that may be routed out of its family (`fiscus.sdk.across`)."""
    prepared = gate.prepare(endpoint.fmt, endpoint.provider, kwargs, endpoint.max_key(kwargs))
    if endpoint.fmt not in across.OPERATION:
        return (yield from admit_steps(gate, prepared, counter(endpoint, client)))
    token = across.crossing.set(endpoint.fmt)
    try:
        return (yield from admit_steps(gate, prepared, counter(endpoint, client)))
    finally:
        across.crossing.reset(token)


def _create(resource: Any) -> Any:
    return resource.create


def _raw_create(resource: Any) -> Any:
    return resource.with_raw_response.create


def _crossed(gate: Gate, endpoint: Endpoint, client: Any, plan: Plan, is_async: bool, pick: Pick) -> Any:
    """The method that sends a call the governor routed out of its family, or None (the client's own)."""
    served, asked = plan.kwargs.get("model"), plan.request.model if plan.request else None
    if client is None or not served or served == asked:
        return None
    other = across.endpoint_for(gate.governor, endpoint.fmt, str(served))
    if other is None:
        return None
    from fiscus.sdk.across_wire import crossed_resource

    plan.served_provider = other.name
    resource = crossed_resource(client, endpoint.fmt, other, is_async)
    return pick(resource)


def short_steps(governor: Any, short: Short) -> Steps[None]:
    """Record a call that reaches no model: settle its admission, or record it if it was never admitted."""
    if short.admission is not None:
        yield from governor.settle_steps(short.admission, None, status=short.status)
    elif short.unadmitted is not None and hasattr(governor, "record"):
        governor.record(short.unadmitted, status=short.status, message=short.message)  # a ledger submit, no I/O


@dataclass(frozen=True, slots=True)
class Watch:
    """The model answered with a stream: the driver's caller watches it and settles at its end."""

    plan: Plan
    stream: Any


def call_steps(
    gate: Gate,
    endpoint: Endpoint,
    client: Any,
    kwargs: dict[str, Any],
    is_async: bool,
    shorts: bool = False,
    pick: Pick | None = None,
) -> CallSteps[Any]:
    """`shorts`: a call that reaches no model returns its `Short` for the door to answer. `pick`: the method of
    the crossed resource that stands for the door's own (default `create`), for a call routed out of its family."""
    governor = gate.governor
    stream = bool(kwargs.get("stream"))
    cached = response_cache.lookup(gate, endpoint.fmt, kwargs)  # the call as the client made it
    if cached is not None and cached.answer is not None:
        hit = yield from _hit(gate, endpoint, kwargs, cached.answer)
        if hit is not None:
            return hit
    kwargs, summary = yield from summary_steps(gate, endpoint, kwargs, raw=False)
    plan = yield from _admit_crossing(gate, endpoint, kwargs, client)
    if isinstance(plan, Short):
        return plan if shorts else _answer(plan, endpoint, client, stream, is_async, kwargs)
    admission = plan.admission
    with_summary(admission, summary)
    if stream:
        _stream_options(plan)
    via = _crossed(gate, endpoint, client, plan, is_async, pick or _create)
    try:
        response = yield CallModel(plan.kwargs, via)
    except BaseException as exc:
        args = plan.finish_args(None, error=exc, streamed=stream)
        plan.after((yield from governor.settle_steps(admission, None, **args)))
        raise
    if stream:
        return Watch(plan, response)
    usage, text, calls = _whole_usage(plan, response)
    served = plan.kwargs.get("model")  # as `plan.finish_args` gives it, without building the dict
    event = yield from governor.settle_steps(
        admission,
        usage,
        status=CallStatus.OK,
        served_model=served,
        error=None,
        streamed=False,
        served_provider=plan.served_provider,
    )
    plan.after(event, output=text, tool_calls=calls)
    if cached is not None and not admission.decision.degraded:  # a degraded answer is not the one asked for
        response_cache.keep(gate, cached, response, usage, str(served))
    return response


def _hit(gate: Gate, endpoint: Endpoint, kwargs: dict[str, Any], answer: CachedAnswer) -> Steps[Any]:
    """A call answered from the response cache, once the guards let it through (loops, breakers, a stopped
    session): recorded as a cache hit at $0 and booked in the session like any call; None when a guard stops it
    (the caller then goes the usual way and is refused there)."""
    prepared = gate.prepare(endpoint.fmt, endpoint.provider, kwargs, endpoint.max_key(kwargs))
    if not isinstance(prepared, Plan) or prepared.request is None:
        return None
    try:
        response = response_cache.replayed(endpoint.fmt, answer)
    except Exception:  # an entry this SDK version cannot read: a miss
        return None
    event = yield from gate.governor.cache_hit_steps(replace(prepared.request, input_tokens=0), answer.usage)
    text, calls = output_of(endpoint.fmt, response)
    prepared.after(event, output=text, tool_calls=calls)
    return response


def finish_steps(plan: Plan, observer: Observer, error: BaseException | None) -> Steps[None]:
    """Settle a watched stream at its end (or its failure), with the usage the stream reported."""
    usage = observer.result(plan.input_tokens)
    args = plan.finish_args(usage, error=error, streamed=True)
    event = yield from plan.gate.governor.settle_steps(plan.admission, usage, **args)
    text, calls = observer.output()
    plan.after(event, output=text, tool_calls=calls)


def raw_steps(
    gate: Gate, endpoint: Endpoint, kwargs: dict[str, Any], client: Any = None, is_async: bool = False
) -> CallSteps[Any]:
    """`with_raw_response.create`: the raw response is returned; usage is read from its parsed body.
    A call that reaches no model returns its `Short` (the door answers it with `answer_exchange`)."""
    if kwargs.get("stream"):
        raise FiscusError("fiscus: with_raw_response.create(stream=True) is not governed; use create(stream=True)")
    governor = gate.governor
    kwargs, summary = yield from summary_steps(gate, endpoint, kwargs, raw=True)
    plan = yield from _admit_crossing(gate, endpoint, kwargs, client)
    if isinstance(plan, Short):
        return plan
    with_summary(plan.admission, summary)
    via = _crossed(gate, endpoint, client, plan, is_async, _raw_create)
    try:
        raw = yield CallModel(plan.kwargs, via)
        usage, text, calls = _whole_usage(plan, (yield ParseRaw(raw)))
    except BaseException as exc:
        args = plan.finish_args(None, error=exc, streamed=False)
        plan.after((yield from governor.settle_steps(plan.admission, None, **args)))
        raise
    args = plan.finish_args(usage, error=None, streamed=False)
    plan.after((yield from governor.settle_steps(plan.admission, usage, **args)), output=text, tool_calls=calls)
    return raw


# -- the doors --------------------------------------------------------------------------------------------


def call_sync(
    gate: Gate,
    endpoint: Endpoint,
    fn: Callable[..., Any],
    client: Any,
    kwargs: dict[str, Any],
    shorts: bool = False,
    pick: Pick | None = None,
) -> Any:
    store = gate.governor.store
    result = run(call_steps(gate, endpoint, client, kwargs, False, shorts, pick), store, fn)
    if type(result) is not Watch:
        return result
    plan = result.plan

    def finish(observer: Observer, error: BaseException | None) -> None:
        run(finish_steps(plan, observer, error), store)

    return observe_sync(result.stream, Observer(endpoint.fmt, hide_usage_chunk=plan.hide_usage_chunk), finish)


async def call_async(
    gate: Gate,
    endpoint: Endpoint,
    fn: Callable[..., Any],
    client: Any,
    kwargs: dict[str, Any],
    shorts: bool = False,
    pick: Pick | None = None,
) -> Any:
    store = gate.governor.store
    result = await arun(call_steps(gate, endpoint, client, kwargs, True, shorts, pick), store, fn)
    if type(result) is not Watch:
        return result
    plan = result.plan

    async def finish(observer: Observer, error: BaseException | None) -> None:
        await arun(finish_steps(plan, observer, error), store)

    def finish_sync(observer: Observer, error: BaseException | None) -> None:  # a stream closed outside a loop
        run(finish_steps(plan, observer, error), store)

    observer = Observer(endpoint.fmt, hide_usage_chunk=plan.hide_usage_chunk)
    return observe_async(result.stream, observer, finish, finish_sync)


RAW = "with_raw_response"
STREAMING = "with_streaming_response"


def call_raw_sync(gate: Gate, endpoint: Endpoint, fn: Callable[..., Any], client: Any, kwargs: dict[str, Any]) -> Any:
    result = run(raw_steps(gate, endpoint, kwargs, client, False), gate.governor.store, fn)
    if type(result) is Short:
        return answer_exchange(result, endpoint, client, kwargs, RAW, is_async=False)
    return result


async def call_raw_async(
    gate: Gate, endpoint: Endpoint, fn: Callable[..., Any], client: Any, kwargs: dict[str, Any]
) -> Any:
    result = await arun(raw_steps(gate, endpoint, kwargs, client, True), gate.governor.store, fn)
    if type(result) is Short:
        return await answer_exchange(result, endpoint, client, kwargs, RAW, is_async=True)
    return result


__all__ = [
    "ANTHROPIC_MESSAGES",
    "OPENAI_CHAT",
    "OPENAI_RESPONSES",
    "RAW",
    "STREAMING",
    "CallStatus",
    "Endpoint",
    "admit_steps",
    "answer_exchange",
    "call_async",
    "call_raw_async",
    "call_raw_sync",
    "call_steps",
    "call_sync",
    "raw_steps",
    "short_steps",
]
