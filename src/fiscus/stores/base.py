"""The budget store interface: atomic multi-budget reservations with leases, and settlement.

The engine decides *what* to reserve; a store only keeps counters and makes the check-and-reserve atomic
across every line of a request, in one process (memory), on one host (SQLite) or across hosts (Redis).
Stores know nothing of policies: each line carries its own limit. Time is always passed in (`now`, epoch
seconds) so tests can drive a simulated clock and several hosts agree on lease expiry.

Counter model: a *counter key* (e.g. `b:team=growth:month:2026-11`) holds six integers — spent and reserved
for each meter (USD in nano-dollars, tokens, requests). A line's check sums spent + reserved over all its
`keys` (one key for calendar, session and never-reset windows; the live buckets of a rolling window) and
lands the reservation, and later the settled spend, on `keys[0]`.
"""

from __future__ import annotations

import abc
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

from fiscus.engine.ports import (  # the port this interface implements
    Amounts,
    Counter,
    Refusal,
    Reservation,
    ReserveLine,
)
from fiscus.errors import StoreError, StoreLost

Restored = tuple[Amounts, float | None]  # a rebuilt counter: its spent amounts and its line's `expires_at`
NOTICED = "L:"  # a marker starting so: the loss was noticed, the counters are not whole yet


def new_epoch() -> str:
    """A fresh marker value: when and which restore made the counters whole."""
    return f"{int(time.time() * 1000)}-{secrets.token_hex(4)}"


def lost_error(where: str) -> StoreLost:
    return StoreLost(f"budget store {where} has lost its state (its epoch marker is gone): nothing reserved")


def require_keys(lines: tuple[ReserveLine, ...]) -> None:
    """Every line needs a counter key to check and land on; a line without one is a caller's bug."""
    for line in lines:
        if not line.keys:
            raise StoreError(f"budget {line.budget!r}: a reserve line needs at least one counter key")


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A settled call's record (its serialised `CostEvent`) waiting in the store's outbox for the ledger."""

    id: str
    record: bytes
    ref: str = ""  # the backend's own handle where it differs from `id` (a Redis stream entry id)


class BudgetStore(abc.ABC):
    """Implementations: `MemoryStore` (memory://), `SqliteStore` (sqlite:///path), `RedisStore` (redis://).

    Every method is atomic with respect to every other caller of the same store (threads, processes or
    hosts, as far as the backend reaches). Async variants default to the sync ones; network stores override.

    The outbox: `settle(..., record=...)` keeps the call's record in the same atomic step as its counters, and
    `record(...)` keeps one for a call that held no reservation; the ledger writer reads them (`outbox`) and
    removes them once the ledger has them (`outbox_done`). `durable` says whether what a store keeps survives
    this process being killed (SQLite, Redis: yes; memory: no), and so whether the governor records through it.
    """

    durable: bool = False
    # Loss detection: the store keeps a marker with its counters (an epoch; `NOTICED…` once a loss was noticed).
    # Guarded, a reserve on a store whose marker is not whole raises `StoreLost` and changes nothing, and a settle
    # still lands but keeps its id in the lost set (`lost_ids`), so a rebuild from the ledger counts it once.
    # Unguarded (standalone use), a store without its marker quietly marks itself whole and goes on.
    guarded: bool = False

    @abc.abstractmethod
    def marker(self) -> str | None:
        """The marker as stored now: an epoch, `NOTICED…` once a loss was noticed, None when it is gone."""

    @abc.abstractmethod
    def claim_loss(self, *, now: float) -> bool:
        """Mark a missing marker as noticed; True for the one caller (across processes) that did it."""

    @abc.abstractmethod
    def lost_ids(self) -> set[str]:
        """Ids settled while the marker was not whole (their spend is on the counters already)."""

    @abc.abstractmethod
    def restore(self, spent: Mapping[str, Restored], *, epoch: str, now: float) -> bool:
        """Only while the marker is not whole, atomically: add each `spent` to its counter (keeping its line's
        expiry), write `epoch` as the marker and empty the lost set. True when this call restored; False when the
        store was whole already (another worker restored first) and nothing changed."""

    @abc.abstractmethod
    def reserve(
        self, reservation_id: str, lines: tuple[ReserveLine, ...], *, now: float, lease_seconds: float
    ) -> Reservation | Refusal:
        """All lines fit (sum of spent+reserved over each line's keys, plus its amount, within its limits)
        → reserve every amount on each line's keys[0] and return the `Reservation`; else change nothing
        and return a `Refusal`. Expired leases never count: they are reaped first (Redis: before refusing)."""

    @abc.abstractmethod
    def settle(self, reservation: Reservation, actual: Amounts, *, now: float, record: bytes | None = None) -> str:
        """Release what `reservation` holds and add `actual` to the spent of each line's keys[0]; with `record`,
        put it in the outbox under the reservation's id in the same atomic step.
        Idempotent per reservation id (a duplicate adds no record). Returns a `SettleOutcome` value. A late
        settle still records spend: money incurred is never dropped."""

    @abc.abstractmethod
    def record(self, entry_id: str, record: bytes) -> None:
        """Put one call's record in the outbox (a call that held no reservation: refused, partial)."""

    @abc.abstractmethod
    def outbox(self, limit: int) -> list[OutboxEntry]:
        """Up to `limit` outbox entries, oldest first (the same id may come back until `outbox_done`)."""

    @abc.abstractmethod
    def outbox_done(self, entries: list[OutboxEntry]) -> None:
        """Remove these entries (as `outbox` gave them) from the outbox: the ledger has them."""

    @abc.abstractmethod
    def renew(self, reservation: Reservation, *, now: float, lease_seconds: float) -> bool:
        """Extend a live lease (heartbeat). False when the lease already expired or was settled."""

    @abc.abstractmethod
    def reap(self, *, now: float) -> int:
        """Return every expired lease's reservation to the pool; the count reaped."""

    @abc.abstractmethod
    def counters(self, keys: tuple[str, ...], *, now: float) -> dict[str, Counter]:
        """Current counters of these keys (zero for unknown keys), after reaping expired leases."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def keys_with_prefix(self, prefix: str, *, now: float) -> list[str]:
        """The counter keys starting with `prefix` that still hold a counter, sorted (status of per-value
        budgets, e.g. one per user). A counter is gone once its line's `expires_at` plus the store's margin
        has passed and it holds no reservation (Redis: when its TTL runs out on the server's clock).
        Stores that cannot list raise NotImplementedError; status then shows what it can."""
        raise NotImplementedError

    async def akeys_with_prefix(self, prefix: str, *, now: float) -> list[str]:
        return self.keys_with_prefix(prefix, now=now)

    async def areserve(
        self, reservation_id: str, lines: tuple[ReserveLine, ...], *, now: float, lease_seconds: float
    ) -> Reservation | Refusal:
        return self.reserve(reservation_id, lines, now=now, lease_seconds=lease_seconds)

    async def asettle(
        self, reservation: Reservation, actual: Amounts, *, now: float, record: bytes | None = None
    ) -> str:
        return self.settle(reservation, actual, now=now, record=record)

    async def arecord(self, entry_id: str, record: bytes) -> None:
        self.record(entry_id, record)

    async def arenew(self, reservation: Reservation, *, now: float, lease_seconds: float) -> bool:
        return self.renew(reservation, now=now, lease_seconds=lease_seconds)

    async def acounters(self, keys: tuple[str, ...], *, now: float) -> dict[str, Counter]:
        return self.counters(keys, now=now)

    async def aclose(self) -> None:
        self.close()
