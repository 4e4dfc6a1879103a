"""`<resource>.with_streaming_response.create(...)`, governed: a context manager whose response's `parse()`
gives the governed answer (a governed stream or the parsed object), so the call is admitted, bounded and
settled like `create`. The OpenAI Agents SDK streams Responses this way.

A call that reaches no model gets the SDK's own response object for the partial answer (headers with
`x-fiscus-partial`, `parse()`, `iter_lines()`; see `fiscus.sdk.exchange`), or raises the refusal.

Reading the raw bytes of an admitted call instead (`iter_bytes`, `iter_lines`) goes past the usage reader:
such a call is settled with estimated usage when the context closes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fiscus.sdk.calls import STREAMING, Endpoint, answer_exchange, call_async, call_sync
from fiscus.sdk.gate import Gate, Short


class _Response:
    """The SDK's API response with `parse()` answering the governed result."""

    def __init__(self, target: Any, result: Any) -> None:
        self._target = target
        self._result = result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def parse(self, **kwargs: Any) -> Any:
        return self._result


class _AsyncResponse(_Response):
    async def parse(self, **kwargs: Any) -> Any:  # type: ignore[override]
        return self._result


class GovernedStreamingSync:
    def __init__(self, gate: Gate, endpoint: Endpoint, fn: Callable[..., Any], client: Any, kwargs: dict[str, Any]):
        self._args = (gate, endpoint, fn, client, kwargs)
        self._manager: Any = None
        self._api: Any = None
        self._result: Any = None

    def _open(self, **kwargs: Any) -> Any:
        return self._open_with(self._args[2], kwargs)

    def _open_with(self, create: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        self._manager = create(**kwargs)
        self._api = self._manager.__enter__()
        return self._api.parse()

    def _crossed(self, resource: Any) -> Callable[..., Any]:
        """A call routed out of its family: the same, on the crossed resource (`fiscus.sdk.across`)."""
        return lambda **kwargs: self._open_with(resource.with_streaming_response.create, kwargs)

    def __enter__(self) -> Any:
        gate, endpoint, _, client, kwargs = self._args
        self._result = call_sync(gate, endpoint, self._open, client, kwargs, shorts=True, pick=self._crossed)
        if type(self._result) is Short:  # no model called: the SDK's own response for the partial answer
            self._manager = answer_exchange(self._result, endpoint, client, kwargs, STREAMING, is_async=False)
            self._result = None
            return self._manager.__enter__()
        return _Response(self._api, self._result)

    def __exit__(self, *exc: Any) -> None:
        if hasattr(self._result, "_iterator"):  # a stream left unread settles now, not at collection
            self._result.close()
        if self._manager is not None:
            self._manager.__exit__(*exc)


class GovernedStreamingAsync:
    def __init__(self, gate: Gate, endpoint: Endpoint, fn: Callable[..., Any], client: Any, kwargs: dict[str, Any]):
        self._args = (gate, endpoint, fn, client, kwargs)
        self._manager: Any = None
        self._api: Any = None
        self._result: Any = None

    async def _open(self, **kwargs: Any) -> Any:
        return await self._open_with(self._args[2], kwargs)

    async def _open_with(self, create: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        self._manager = create(**kwargs)
        self._api = await self._manager.__aenter__()
        return await self._api.parse()

    def _crossed(self, resource: Any) -> Callable[..., Any]:
        return lambda **kwargs: self._open_with(resource.with_streaming_response.create, kwargs)

    async def __aenter__(self) -> Any:
        gate, endpoint, _, client, kwargs = self._args
        self._result = await call_async(gate, endpoint, self._open, client, kwargs, shorts=True, pick=self._crossed)
        if type(self._result) is Short:
            self._manager = answer_exchange(self._result, endpoint, client, kwargs, STREAMING, is_async=True)
            self._result = None
            return await self._manager.__aenter__()
        return _AsyncResponse(self._api, self._result)

    async def __aexit__(self, *exc: Any) -> None:
        if hasattr(self._result, "_iterator"):
            await self._result.close()
        if self._manager is not None:
            await self._manager.__aexit__(*exc)
