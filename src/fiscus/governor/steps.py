"""The store operations the pipeline asks for, as data: the sans-IO core yields them and is sent their results.

`Governor.admit_steps` and `settle_steps` (and the announcer's) are generators of these; they do no I/O
themselves, so the same steps run under the sync driver, the async driver, or a test's fake store
(`fiscus.governor.drive`).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from fiscus.engine.ports import Amounts, Reservation, ReserveLine

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Reserve:
    """Reserve `lines` atomically under `reservation_id`; answered with a `Reservation` or a `Refusal`."""

    reservation_id: str
    lines: tuple[ReserveLine, ...]
    now: float
    lease_seconds: float


@dataclass(frozen=True, slots=True)
class ReadCounters:
    """Read the counters of `keys`; answered with a mapping key → `Counter`."""

    keys: tuple[str, ...]
    now: float


@dataclass(frozen=True, slots=True)
class Settle:
    """Settle `reservation` at its `actual` amounts, with the call's `record` for the store's outbox (a durable
    store); answered with the store's outcome string. A store error is thrown back into the steps."""

    reservation: Reservation
    actual: Amounts
    now: float
    record: bytes | None = None


@dataclass(frozen=True, slots=True)
class Record:
    """Put the `record` of a call that held no reservation in the store's outbox; answered with None."""

    entry_id: str
    record: bytes


StoreOp = Reserve | ReadCounters | Settle | Record
Steps = Generator[StoreOp, Any, T]  # yields store operations, is sent each one's result, returns T
