"""`fiscus.wrap(client, ...)`: the official OpenAI / Anthropic client, governed, with the same methods and
return types. The proxy intercepts the model-calling methods and hands everything else to the client."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fiscus.errors import FiscusError
from fiscus.guards.loops import LoopConfig
from fiscus.guards.registry import BreakerRegistry
from fiscus.sdk.batches import BatchBook, as_json, raw_json
from fiscus.sdk.calls import (
    ANTHROPIC_MESSAGES,
    OPENAI_CHAT,
    OPENAI_RESPONSES,
    Endpoint,
    call_async,
    call_raw_async,
    call_raw_sync,
    call_sync,
)
from fiscus.sdk.gate import Gate
from fiscus.sdk.runtime import batch_store_for, open_gate
from fiscus.sdk.streaming_response import GovernedStreamingAsync, GovernedStreamingSync


class _Proxy:
    """Attributes set on the proxy win; anything else is the wrapped object's own."""

    def __init__(self, target: Any) -> None:
        self.__dict__["_target"] = target

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_target"], name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.__dict__["_target"], name, value)

    def __repr__(self) -> str:
        return f"<fiscus governed {self.__dict__['_target']!r}>"


def _set(proxy: _Proxy, **attrs: Any) -> _Proxy:
    proxy.__dict__.update(attrs)
    return proxy


def _method(gate: Gate, endpoint: Endpoint, fn: Callable[..., Any], client: Any, is_async: bool) -> Callable[..., Any]:
    if is_async:

        async def acreate(**kwargs: Any) -> Any:
            return await call_async(gate, endpoint, fn, client, kwargs)

        return acreate

    def create(**kwargs: Any) -> Any:
        return call_sync(gate, endpoint, fn, client, kwargs)

    return create


def _raw(gate: Gate, endpoint: Endpoint, resource: Any, client: Any, is_async: bool) -> _Proxy:
    """`<resource>.with_raw_response`, its `create` governed like the plain one."""
    raw = resource.with_raw_response
    if is_async:

        async def acreate(**kwargs: Any) -> Any:
            return await call_raw_async(gate, endpoint, raw.create, client, kwargs)

        return _set(_Proxy(raw), create=acreate)

    def create(**kwargs: Any) -> Any:
        return call_raw_sync(gate, endpoint, raw.create, client, kwargs)

    return _set(_Proxy(raw), create=create)


def _streaming(gate: Gate, endpoint: Endpoint, resource: Any, client: Any, is_async: bool) -> _Proxy:
    """`<resource>.with_streaming_response`, its `create` governed (see `fiscus.sdk.streaming_response`)."""
    streaming = resource.with_streaming_response
    governed = GovernedStreamingAsync if is_async else GovernedStreamingSync

    def create(**kwargs: Any) -> Any:
        return governed(gate, endpoint, streaming.create, client, kwargs)

    return _set(_Proxy(streaming), create=create)


def _resource(gate: Gate, endpoint: Endpoint, resource: Any, client: Any, is_async: bool, **attrs: Any) -> _Proxy:
    return _set(
        _Proxy(resource),
        create=_method(gate, endpoint, resource.create, client, is_async),
        with_raw_response=_raw(gate, endpoint, resource, client, is_async),
        with_streaming_response=_streaming(gate, endpoint, resource, client, is_async),
        **attrs,
    )


def _wrap_openai(client: Any, gate: Gate, is_async: bool) -> _Proxy:
    completions = _resource(gate, OPENAI_CHAT, client.chat.completions, client, is_async)
    chat = _set(_Proxy(client.chat), completions=completions)
    responses = _resource(gate, OPENAI_RESPONSES, client.responses, client, is_async)
    governed_batches = _openai_batches(_book(gate), client.batches, client.files, is_async)
    return _set(_Proxy(client), chat=chat, responses=responses, batches=governed_batches, fiscus_gate=gate)


def _book(gate: Gate) -> BatchBook:
    return BatchBook(gate, lambda: batch_store_for(gate.governor))


def _unstreamed(name: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise FiscusError(
            f"fiscus: {name}.with_streaming_response.create is not governed; use create or with_raw_response.create"
        )

    return refuse


def _openai_batches(book: BatchBook, batches: Any, files: Any, is_async: bool) -> _Proxy:
    """`client.batches`: create, retrieve and cancel governed, plain and `with_raw_response` (see
    `fiscus.sdk.batches`); list passes through."""
    raw, content = batches.with_raw_response, files.content

    def methods(on: Any, parse: Any) -> dict[str, Any]:
        return {
            "create": book.governed(is_async, lambda **kw: book.openai_create(on.create, content, kw, parse)),
            "retrieve": book.governed(
                is_async, lambda batch_id, **kw: book.openai_retrieve(on.retrieve, content, batch_id, kw, parse)
            ),
            "cancel": book.governed(
                is_async,
                lambda batch_id, **kw: book.openai_cancel(on.cancel, batches.retrieve, content, batch_id, kw, parse),
            ),
        }

    streaming = _set(_Proxy(batches.with_streaming_response), create=_unstreamed("batches"))
    raw_proxy = _set(_Proxy(raw), **methods(raw, raw_json))
    return _set(
        _Proxy(batches), **methods(batches, as_json), with_raw_response=raw_proxy, with_streaming_response=streaming
    )


def _anthropic_batches(book: BatchBook, batches: Any, is_async: bool) -> _Proxy:
    """`client.messages.batches`: create, retrieve, cancel and results governed, plain and `with_raw_response`
    (results read raw pass through); list and delete pass through."""
    raw, results = batches.with_raw_response, batches.results

    def methods(on: Any, parse: Any) -> dict[str, Any]:
        return {
            "create": book.governed(is_async, lambda **kw: book.anthropic_create(on.create, kw, parse)),
            "retrieve": book.governed(
                is_async, lambda batch_id, **kw: book.anthropic_retrieve(on.retrieve, results, batch_id, kw, parse)
            ),
            "cancel": book.governed(
                is_async,
                lambda batch_id, **kw: book.anthropic_cancel(on.cancel, batches.retrieve, results, batch_id, kw, parse),
            ),
        }

    streaming = _set(_Proxy(batches.with_streaming_response), create=_unstreamed("messages.batches"))
    raw_proxy = _set(_Proxy(raw), **methods(raw, raw_json))
    return _set(
        _Proxy(batches),
        **methods(batches, as_json),
        results=book.governed(is_async, lambda batch_id, **kw: book.anthropic_results(results, batch_id, kw)),
        with_raw_response=raw_proxy,
        with_streaming_response=streaming,
    )


def _wrap_anthropic(client: Any, gate: Gate, is_async: bool) -> _Proxy:
    from anthropic import NOT_GIVEN
    from anthropic.lib.streaming import AsyncMessageStreamManager, MessageStreamManager

    messages = client.messages
    create = _method(gate, ANTHROPIC_MESSAGES, messages.create, client, is_async)

    def stream(**kwargs: Any) -> Any:
        """`messages.stream(...)`: the SDK's own stream manager over the governed `create(stream=True)`."""
        if "output_format" in kwargs:
            raise FiscusError("fiscus: messages.stream(output_format=...) is not governed; use create(stream=True)")
        kwargs = {**kwargs, "stream": True}
        if is_async:
            return AsyncMessageStreamManager(create(**kwargs), output_format=NOT_GIVEN)
        return MessageStreamManager(lambda: create(**kwargs), output_format=NOT_GIVEN)

    raw = _raw(gate, ANTHROPIC_MESSAGES, messages, client, is_async)
    streaming = _streaming(gate, ANTHROPIC_MESSAGES, messages, client, is_async)
    governed_batches = _anthropic_batches(_book(gate), messages.batches, is_async)
    governed = _set(
        _Proxy(messages),
        create=create,
        stream=stream,
        with_raw_response=raw,
        with_streaming_response=streaming,
        batches=governed_batches,
    )
    return _set(_Proxy(client), messages=governed, fiscus_gate=gate)


def wrap(
    client: Any,
    *,
    agent: str | None = None,
    team: str | None = None,
    workflow: str | None = None,
    environment: str | None = None,
    tenant: str | None = None,
    user: str | None = None,
    task_class: str | None = None,
    governor: Any | None = None,
    config: str | Path | None = None,
    policy: Any | None = None,
    on_exhausted: str = "partial",
    priority: str = "normal",
    loops: LoopConfig | None = None,
    breakers: BreakerRegistry | None = None,
    on_warn: Callable[..., None] | None = None,
    cache_prompts: bool | None = None,
    key_id: str | None = None,
    overrides: Any | None = None,
) -> Any:
    """Govern an `openai.OpenAI`/`AsyncOpenAI` or `anthropic.Anthropic`/`AsyncAnthropic` client.

    Every call is counted, admitted by the governor (which may downgrade, clamp, compress, answer partially
    or block), sent, read for usage and settled. `governor` defaults to the process's shared one (from
    `config`, `$FISCUS_CONFIG` or the defaults); `policy` builds a private one. `on_exhausted="raise"` turns
    partial answers into `BudgetExhausted`. `breakers` and `loops` default to the `guards:` section of that
    config (breakers shared by every client over the same governor). `cache_prompts` (default: the config's
    `optimise.prompt_cache`) puts Anthropic cache breakpoints on the stable prefix and the conversation once they
    repeat, with the lifetime their reuse interval pays for (`fiscus.shaping.cache`). `key_id` (a virtual key's
    id, `vk_…`) attributes the calls to that key: budgets scoped on `api_key` and overrides granted for the key
    apply. `overrides` (a `fiscus.overrides.OverrideBook`) defaults to the one on the config's `keys:` database.
    """
    gate = open_gate(
        governor=governor,
        config=config,
        policy=policy,
        attribution={
            "agent": agent,
            "team": team,
            "workflow": workflow,
            "environment": environment,
            "tenant": tenant,
            "user": user,
            "task_class": task_class,
            "api_key": key_id,
        },
        on_exhausted=on_exhausted,
        priority=priority,
        breakers=breakers,
        loops=loops,
        on_warn=on_warn,
        cache_prompts=cache_prompts,
        overrides=overrides,
    )
    kind = _kind(client)
    if kind == "openai":
        return _wrap_openai(client, gate, is_async=_is_async(client))
    return _wrap_anthropic(client, gate, is_async=_is_async(client))


def _kind(client: Any) -> str:
    module = type(client).__module__.split(".")[0]
    if module in ("openai", "anthropic"):
        return module
    for base in type(client).__mro__:
        root = base.__module__.split(".")[0]
        if root in ("openai", "anthropic"):
            return root
    raise FiscusError(
        "fiscus.wrap supports openai.OpenAI/AsyncOpenAI and anthropic.Anthropic/AsyncAnthropic, "
        f"got {type(client).__name__}"
    )


def _is_async(client: Any) -> bool:
    return type(client).__name__.startswith("Async")
