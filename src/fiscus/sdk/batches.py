"""Batches through a wrapped client, governed as the gateway governs them (`fiscus.batches`): the worst case
reserved at batch prices on create, all or none; each result recorded once, at batch prices, once the batch has
ended; the rest of the reservation released, and all of it for a batch that ended with nothing done.

Settling never waits for the caller to read the results: a `retrieve` (or a `cancel`) through a wrapped client
that sees the batch ended reads its results through that client and settles it there (OpenAI: its output and
error files; Anthropic: its results), and `fiscus batches settle` settles those nobody looked at again, with the
config's provider credentials. `messages.batches.results` of a batch not yet settled settles it; nothing is
counted twice. A cancelled batch's requests that ran before it stopped are priced; the rest release their share.
`with_raw_response.create` / `.retrieve` / `.cancel` are governed the same way; `with_streaming_response` of
them is refused.

Each flow is a generator of the governor's batch operations and the client's own calls (`Call`, `Collect`) and
the batch store's (`Keep`), run by the batch drivers: one flow for the sync and the async client.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fiscus.attribution import Attribution
from fiscus.batches.admit import Refused, admit_steps, hold_steps, release_steps
from fiscus.batches.drive import BatchOp, arun, run
from fiscus.batches.ended import has_ended, read_results, to_read
from fiscus.batches.lines import OPENAI_ENDPOINTS, BatchInputError, anthropic_input, batch_line, openai_input
from fiscus.batches.records import BatchRecord
from fiscus.batches.results import ResultLine, anthropic_results, json_lines
from fiscus.batches.settle import settle_steps
from fiscus.batches.store import BatchStore
from fiscus.errors import FiscusError
from fiscus.sdk.errors import BudgetBlocked
from fiscus.sdk.override_grants import grants
from fiscus.sdk.session import current_session
from fiscus.usage.wire import WireFormat

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Call:
    """Call the wrapped client's own method; answered with what it returns (awaited when async)."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Collect:
    """Read an iterator of results to the end (an async one when the client is async); answered with the list."""

    items: Any


@dataclass(frozen=True, slots=True)
class Keep:
    """A batch store call; answered with its result (run in a thread when async)."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()


Flow = Generator[BatchOp | Call | Collect | Keep, Any, T]
Parse = Callable[[Any], dict[str, Any]]  # the provider's batch, as its JSON, in what a client method returned
Reader = Callable[[str], Flow[list[dict[str, Any]]]]  # one result file or stream, read as its JSON lines


def as_json(answer: Any) -> dict[str, Any]:
    return answer.model_dump(mode="json")  # type: ignore[no-any-return]


def raw_json(answer: Any) -> dict[str, Any]:
    """A `with_raw_response` answer's JSON (its body already read, for both clients, sync or async)."""
    body = answer.http_response.json()
    if not isinstance(body, dict):
        raise FiscusError("fiscus: the provider answered a batch call without a JSON object")
    return body


def _client_op(op: Call | Collect | Keep) -> Any:
    if isinstance(op, Call):
        return op.fn(*op.args, **op.kwargs)
    if isinstance(op, Collect):
        return list(op.items)
    return op.fn(*op.args)


async def _aclient_op(op: Call | Collect | Keep) -> Any:
    if isinstance(op, Call):
        result = op.fn(*op.args, **op.kwargs)
        return await result if inspect.isawaitable(result) else result
    if isinstance(op, Collect):
        return [item async for item in op.items]
    return await asyncio.to_thread(op.fn, *op.args)


class Results:
    """Anthropic batch results already read (to settle them): iterate them, sync or async, as the SDK's decoder."""

    def __init__(self, items: list[Any]) -> None:
        self._items: Iterator[Any] = iter(items)

    def __iter__(self) -> Iterator[Any]:
        return self._items

    def __next__(self) -> Any:
        return next(self._items)

    def __aiter__(self) -> Results:
        return self

    async def __anext__(self) -> Any:
        try:
            return next(self._items)
        except StopIteration:
            raise StopAsyncIteration from None


class BatchBook:
    """What one wrapped client needs to govern batches: its gate and the batch store (`runtime.batch_store_for`),
    shared by every process on the config, so any of them — or `fiscus batches settle` — can settle a batch."""

    def __init__(self, gate: Any, open_store: Callable[[], BatchStore]) -> None:
        self.gate = gate
        self.governor = gate.governor
        self._open_store = open_store
        self._store: BatchStore | None = None

    @property
    def store(self) -> BatchStore:
        """Opened on the first batch: a client that sends none never touches the database."""
        if self._store is None:
            self._store = self._open_store()
        return self._store

    def governed(self, is_async: bool, flow_of: Callable[..., Flow[Any]]) -> Callable[..., Any]:
        """A client method whose work is the flow `flow_of(*args, **kwargs)`, on the client's own driver."""
        if is_async:

            async def acall(*args: Any, **kwargs: Any) -> Any:
                return await arun(flow_of(*args, **kwargs), self.governor, _aclient_op)

            return acall

        def call(*args: Any, **kwargs: Any) -> Any:
            return run(flow_of(*args, **kwargs), self.governor, _client_op)

        return call

    def _caller(self) -> tuple[Attribution, Any]:
        session = current_session()
        attribution = self.gate.attribution
        if session is not None:
            attribution = session.attribution_for(attribution)
        return attribution, grants(self.gate.overrides, attribution.api_key)

    def _admit(
        self,
        wire: str,
        endpoint: str,
        fmt: WireFormat,
        items: list[tuple[str, Any]],
        create: Call,
        parse: Parse,
    ) -> Flow[Any]:
        """Admit the batch's requests, send it, keep its record and hold its reservation; `BudgetBlocked` with
        the gateway's words when it does not fit (the provider never sees it). The record is kept as soon as the
        provider has named the batch, before its lease is stretched: as on the gateway, a process that stops in
        between leaves a record `fiscus batches settle` finds, and at worst a reservation that lapses early."""
        lines = [batch_line(custom_id, body, fmt) for custom_id, body in items]
        attribution, overrides = self._caller()
        priority = self.gate.priority
        admitted = yield from admit_steps(
            self.governor, wire, lines, attribution, priority, overrides, batch_tag="submitted"
        )
        if isinstance(admitted, Refused):
            d = admitted.admission.decision
            raise BudgetBlocked(admitted.message, retry_at=d.retry_at, reasons=d.reasons)
        try:
            answer = yield create
            batch_id = str(parse(answer)["id"])
        except BaseException:
            yield from release_steps(admitted.admissions)
            raise
        record = BatchRecord(
            batch_id, wire, wire, endpoint, attribution.api_key or "", attribution, priority, time.time(),
            format(admitted.worst_case, "f"), admitted.groups,
        )  # fmt: skip
        yield Keep(self.store.add, (record,))
        yield from hold_steps(admitted)
        return answer

    def _settle(self, record: BatchRecord, results: dict[str, ResultLine], fmt: WireFormat, missing: str) -> Flow[None]:
        yield from settle_steps(record, results, fmt, missing=missing)
        yield Keep(self.store.mark_settled, (record.id,))

    def _if_ended(self, batch: dict[str, Any], read: Reader) -> Flow[None]:
        """Settle the batch the provider described as `batch` when it has ended and is ours, not yet settled,
        reading each of its results (files or stream) with `read`."""
        record = yield Keep(self.store.get, (str(batch.get("id")),))
        if record is None or record.settled or not has_ended(record, batch):
            return
        read_lines = []
        for ident in to_read(record, batch):
            read_lines.append((yield from read(ident)))
        yield from self._settle(record, *read_results(record, batch, read_lines))

    def _retrieve(self, retrieve: Call, parse: Parse, read: Reader) -> Flow[Any]:
        answer = yield retrieve
        yield from self._if_ended(parse(answer), read)
        return answer

    def _cancel(self, cancel: Call, parse: Parse, retrieve: Callable[..., Any], read: Reader) -> Flow[Any]:
        """Cancel, then settle what ran and release the rest once the provider says the batch ended: on this
        call when the cancel (or one retrieve after it) shows it ended, else on the retrieve or `fiscus batches
        settle` that sees it."""
        answer = yield cancel
        batch = parse(answer)
        record = yield Keep(self.store.get, (str(batch.get("id")),))
        if record is None or record.settled:
            return answer
        if not has_ended(record, batch):
            batch = as_json((yield Call(retrieve, (record.id,))))
        yield from self._if_ended(batch, read)
        return answer

    # --- OpenAI ------------------------------------------------------------------------------------------------

    def openai_create(
        self, create: Callable[..., Any], content: Callable[..., Any], kwargs: dict[str, Any], parse: Parse = as_json
    ) -> Flow[Any]:
        endpoint = kwargs.get("endpoint")
        fmt = OPENAI_ENDPOINTS.get(endpoint) if isinstance(endpoint, str) else None
        if fmt is None or not isinstance(kwargs.get("input_file_id"), str):
            raise BatchInputError(
                f"fiscus governs batches for endpoint {' or '.join(OPENAI_ENDPOINTS)} with an input_file_id",
                param="endpoint",
            )
        data = yield Call(content, (kwargs["input_file_id"],))
        items = openai_input(data.content, str(endpoint))
        return (yield from self._admit("openai", str(endpoint), fmt, items, Call(create, (), kwargs), parse))

    def openai_retrieve(
        self,
        retrieve: Callable[..., Any],
        content: Callable[..., Any],
        batch_id: str,
        kwargs: dict[str, Any],
        parse: Parse = as_json,
    ) -> Flow[Any]:
        return (yield from self._retrieve(Call(retrieve, (batch_id,), kwargs), parse, _file_reader(content)))

    def openai_cancel(
        self,
        cancel: Callable[..., Any],
        retrieve: Callable[..., Any],
        content: Callable[..., Any],
        batch_id: str,
        kwargs: dict[str, Any],
        parse: Parse = as_json,
    ) -> Flow[Any]:
        return (yield from self._cancel(Call(cancel, (batch_id,), kwargs), parse, retrieve, _file_reader(content)))

    # --- Anthropic ---------------------------------------------------------------------------------------------

    def anthropic_create(self, create: Callable[..., Any], kwargs: dict[str, Any], parse: Parse = as_json) -> Flow[Any]:
        requests = kwargs.get("requests")
        requests = [dict(item) if isinstance(item, dict) else item for item in requests or ()]
        items = anthropic_input(requests)
        call = Call(create, (), {**kwargs, "requests": requests})
        return (yield from self._admit("anthropic", "/v1/messages", WireFormat.ANTHROPIC, items, call, parse))

    def anthropic_retrieve(
        self,
        retrieve: Callable[..., Any],
        results: Callable[..., Any],
        batch_id: str,
        kwargs: dict[str, Any],
        parse: Parse = as_json,
    ) -> Flow[Any]:
        return (yield from self._retrieve(Call(retrieve, (batch_id,), kwargs), parse, _results_reader(results)))

    def anthropic_cancel(
        self,
        cancel: Callable[..., Any],
        retrieve: Callable[..., Any],
        results: Callable[..., Any],
        batch_id: str,
        kwargs: dict[str, Any],
        parse: Parse = as_json,
    ) -> Flow[Any]:
        return (yield from self._cancel(Call(cancel, (batch_id,), kwargs), parse, retrieve, _results_reader(results)))

    def anthropic_results(self, results: Callable[..., Any], batch_id: str, kwargs: dict[str, Any]) -> Flow[Any]:
        record = yield Keep(self.store.get, (batch_id,))
        if record is None or record.settled:
            return (yield Call(results, (batch_id,), kwargs))
        items = yield Collect((yield Call(results, (batch_id,), kwargs)))
        lines = anthropic_results(item.model_dump(mode="json") for item in items)
        yield from self._settle(record, lines, WireFormat.ANTHROPIC, "no result for this request")
        return Results(list(items))


def _file_reader(content: Callable[..., Any]) -> Reader:
    def read(file_id: str) -> Flow[list[dict[str, Any]]]:
        answer = yield Call(content, (file_id,))
        return json_lines(answer.content)

    return read


def _results_reader(results: Callable[..., Any]) -> Reader:
    def read(batch_id: str) -> Flow[list[dict[str, Any]]]:
        items = yield Collect((yield Call(results, (batch_id,))))
        return [item.model_dump(mode="json") for item in items]

    return read
