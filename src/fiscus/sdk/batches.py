"""Batches through a wrapped client, governed as the gateway governs them (`fiscus.batches`): the worst case
reserved at batch prices on create, all or none; each result recorded once, at batch prices, when the client
reads the results; the rest of the reservation released, and all of it for a batch that ended with nothing done.

OpenAI: `batches.create` reads the input file back through the client and admits it; `batches.retrieve` showing
the batch completed ties its output file to it, and `files.content` of that file settles it (a batch that ended
otherwise — expired, cancelled, failed — or completed without an output file settles on that retrieve, reading
what files it has). Anthropic: `messages.batches.results` settles it, and `retrieve` of a batch that ended with
no request succeeded or errored (cancelled or expired) reads its results and settles it there.

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
from fiscus.batches.lines import OPENAI_ENDPOINTS, BatchInputError, anthropic_input, batch_line, openai_input
from fiscus.batches.records import BatchRecord
from fiscus.batches.results import ResultLine, anthropic_results, json_lines, openai_results
from fiscus.batches.settle import settle_steps
from fiscus.batches.store import BatchStore
from fiscus.sdk.errors import BudgetBlocked
from fiscus.sdk.override_grants import grants
from fiscus.sdk.session import current_session
from fiscus.usage.wire import WireFormat

T = TypeVar("T")
OPENAI_ENDED = ("completed", "expired", "cancelled", "failed")


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
    """What one wrapped client needs to govern batches: its gate and the batch store (`runtime.batch_store_for`).
    The SDK's store keeps each output file's batch in its files table, so any process can settle on reading it."""

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
        self, wire: str, endpoint: str, fmt: WireFormat, items: list[tuple[str, Any]], create: Call
    ) -> Flow[Any]:
        """Admit the batch's requests, send it, keep its record and hold its reservation; `BudgetBlocked` with
        the gateway's words when it does not fit (the provider never sees it)."""
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
            batch = yield create
        except BaseException:
            yield from release_steps(admitted.admissions)
            raise
        record = BatchRecord(
            str(batch.id), wire, wire, endpoint, attribution.api_key or "", attribution, priority, time.time(),
            format(admitted.worst_case, "f"), admitted.groups,
        )  # fmt: skip
        yield Keep(self.store.add, (record,))
        yield from hold_steps(admitted)
        return batch

    def _settle(self, record: BatchRecord, results: dict[str, ResultLine], fmt: WireFormat, missing: str) -> Flow[None]:
        yield from settle_steps(record, results, fmt, missing=missing)
        yield Keep(self.store.mark_settled, (record.id,))

    # --- OpenAI ------------------------------------------------------------------------------------------------

    def openai_create(
        self, create: Callable[..., Any], content: Callable[..., Any], kwargs: dict[str, Any]
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
        return (yield from self._admit("openai", str(endpoint), fmt, items, Call(create, (), kwargs)))

    def openai_retrieve(
        self, retrieve: Callable[..., Any], content: Callable[..., Any], batch_id: str, kwargs: dict[str, Any]
    ) -> Flow[Any]:
        batch = yield Call(retrieve, (batch_id,), kwargs)
        if batch.status not in OPENAI_ENDED:
            return batch
        record = yield Keep(self.store.get, (str(batch.id),))
        if record is None or record.settled:
            return batch
        if batch.status == "completed" and batch.output_file_id:
            yield Keep(self.store.own_file, (str(batch.output_file_id), record.id))  # settled when it is read
            return batch
        results: dict[str, ResultLine] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                answer = yield Call(content, (file_id,))
                openai_results(json_lines(answer.content), results)
        yield from self._settle(record, results, _openai_format(record), f"not run: the batch {batch.status}")
        return batch

    def openai_content(self, content: Callable[..., Any], file_id: str, kwargs: dict[str, Any]) -> Flow[Any]:
        answer = yield Call(content, (file_id,), kwargs)
        batch_id = yield Keep(self.store.file_owner, (file_id,))
        record = (yield Keep(self.store.get, (batch_id,))) if batch_id else None
        if record is not None and not record.settled:
            results: dict[str, ResultLine] = {}
            openai_results(json_lines(answer.content), results)
            yield from self._settle(record, results, _openai_format(record), "not run: in the batch's error file")
        return answer

    # --- Anthropic ---------------------------------------------------------------------------------------------

    def anthropic_create(self, create: Callable[..., Any], kwargs: dict[str, Any]) -> Flow[Any]:
        requests = kwargs.get("requests")
        requests = [dict(item) if isinstance(item, dict) else item for item in requests or ()]
        items = anthropic_input(requests)
        call = Call(create, (), {**kwargs, "requests": requests})
        return (yield from self._admit("anthropic", "/v1/messages", WireFormat.ANTHROPIC, items, call))

    def anthropic_retrieve(
        self, retrieve: Callable[..., Any], results: Callable[..., Any], batch_id: str, kwargs: dict[str, Any]
    ) -> Flow[Any]:
        batch = yield Call(retrieve, (batch_id,), kwargs)
        counts = batch.request_counts
        if batch.processing_status != "ended" or counts.succeeded or counts.errored:
            return batch  # results to price: settled when they are read
        record = yield Keep(self.store.get, (str(batch.id),))
        if record is not None and not record.settled:
            yield from self._anthropic_settle(record, results, batch_id)
        return batch

    def anthropic_results(self, results: Callable[..., Any], batch_id: str, kwargs: dict[str, Any]) -> Flow[Any]:
        record = yield Keep(self.store.get, (batch_id,))
        if record is None or record.settled:
            return (yield Call(results, (batch_id,), kwargs))
        items = yield from self._anthropic_settle(record, results, batch_id, kwargs)
        return Results(items)

    def _anthropic_settle(
        self, record: BatchRecord, results: Callable[..., Any], batch_id: str, kwargs: dict[str, Any] | None = None
    ) -> Flow[list[Any]]:
        items = yield Collect((yield Call(results, (batch_id,), kwargs or {})))
        lines = anthropic_results(item.model_dump(mode="json") for item in items)
        yield from self._settle(record, lines, WireFormat.ANTHROPIC, "no result for this request")
        return list(items)


def _openai_format(record: BatchRecord) -> WireFormat:
    return OPENAI_ENDPOINTS.get(record.endpoint, WireFormat.OPENAI_CHAT)
