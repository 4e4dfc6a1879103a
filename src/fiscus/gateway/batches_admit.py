"""Admitting a batch at the gateway: each request read as its endpoint would read it, then the batch's worst case
reserved at batch prices, all or none (`fiscus.batches.admit`, the steps the SDK runs too)."""

from __future__ import annotations

from typing import Any

import orjson

from fiscus.batches.admit import Admitted, hold_steps, release_steps
from fiscus.batches.drive import arun
from fiscus.batches.lines import BatchInputError, BatchLine, batch_line
from fiscus.gateway.protocol import BadRequest, Protocol, parse_request
from fiscus.governor import Admission


def read_line(protocol: Protocol, custom_id: str, body: Any) -> BatchLine:
    """A request of the batch, or `BadRequest` naming it."""
    if not isinstance(body, dict):
        raise BadRequest(f"batch request {custom_id!r}: its body must be a JSON object", param="body")
    try:
        parse_request(protocol, orjson.dumps(body))
        return batch_line(custom_id, body, protocol.format)
    except BadRequest as exc:
        exc.message = f"batch request {custom_id!r}: {exc.message}"
        raise
    except BatchInputError as exc:
        raise bad_input(exc) from None


def bad_input(exc: BatchInputError) -> BadRequest:
    return BadRequest(exc.message, param=exc.param)


async def hold(governor: Any, admitted: Admitted) -> None:
    await arun(hold_steps(admitted), governor)


async def release(governor: Any, admissions: list[Admission]) -> None:
    await arun(release_steps(admissions), governor)
