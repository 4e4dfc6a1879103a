"""`MemoryStore` (memory://): budget counters in one process, shared by its threads and asyncio tasks.

One lock guards everything; every operation is O(lines × keys) plus O(log n) per lease touched. Expired
leases sit in a heap (lazy deletion: a renewed or settled lease leaves a stale entry that is skipped), so the
reap at the start of `reserve` costs one comparison when nothing has expired. Counters are dropped the same
way, from a second heap, once their line's `expires_at` plus a margin has passed and they hold no reservation.

What it keeps dies with the process: a restarted memory store is a lost one. Guarded (as the governor opens it
from a config) it starts without its marker, so the first admission rebuilds its counters from the ledger.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Mapping

from fiscus.engine.ports import Amounts, Counter, Refusal, Reservation, ReserveLine, SettleOutcome
from fiscus.errors import StoreError
from fiscus.stores.base import NOTICED, BudgetStore, OutboxEntry, Restored, lost_error, new_epoch, require_keys

DEFAULT_SETTLED_TTL = 7 * 86400.0  # how long a settled id is remembered at least, so a retried settle is a DUPLICATE
# ... unless this many settles came after it: one process retries a settle at once, not days later, and a busy
# gateway worker (thousands of settles a second) must not keep a week of ids in memory (~120 bytes each).
DEFAULT_SETTLED_MAX = 20_000
DEFAULT_COUNTER_TTL_MARGIN = 86400.0  # a counter is kept this long past its line's `expires_at`


class _Cell:
    """Mutable counter: spent and reserved per meter, and the latest `expires_at` of a line that touched it."""

    __slots__ = ("expires", "rn", "rr", "rt", "sn", "sr", "st")

    def __init__(self) -> None:
        self.sn = self.st = self.sr = self.rn = self.rt = self.rr = 0
        self.expires: float | None = None


class MemoryStore(BudgetStore):
    def __init__(
        self,
        *,
        settled_ttl: float = DEFAULT_SETTLED_TTL,
        counter_ttl_margin: float = DEFAULT_COUNTER_TTL_MARGIN,
        settled_max: int = DEFAULT_SETTLED_MAX,
        guarded: bool = False,
    ) -> None:
        self.guarded = guarded
        self._marker: str | None = None if guarded else new_epoch()
        self._intact = not guarded
        self._lost: set[str] = set()
        self._lock = threading.Lock()
        self._cells: dict[str, _Cell] = {}
        self._live: dict[str, Reservation] = {}  # id → reservation with its current lease
        self._heap: list[tuple[float, str]] = []  # (lease expiry, id); stale entries skipped
        # Settled ids in two generations: the current one and the one before. Every `settled_ttl`, or when the
        # current one holds `settled_max` ids, the older is dropped: an id is remembered for at least one TTL or
        # the next `settled_max` settles, whichever ends first, at one dict insert per settle and bounded memory.
        self._settled: dict[str, None] = {}
        self._settled_before: dict[str, None] = {}
        self._settled_ttl = settled_ttl
        self._settled_max = settled_max
        self._rotate_at: float | None = None
        self._margin = counter_ttl_margin
        self._drops: list[tuple[float, str]] = []  # (expires_at + margin, counter key); stale entries skipped
        self._outbox: dict[str, bytes] = {}  # id → record, in insertion order

    # -- operations -----------------------------------------------------------------------------------

    def reserve(
        self, reservation_id: str, lines: tuple[ReserveLine, ...], *, now: float, lease_seconds: float
    ) -> Reservation | Refusal:
        with self._lock:
            if not self._intact:
                raise lost_error("memory://")
            if (self._heap and self._heap[0][0] <= now) or (self._drops and self._drops[0][0] < now):
                self._reap(now)
            live = self._live.get(reservation_id)
            if live is not None:  # a retried reserve: the first one stands
                return live
            if reservation_id in self._settled or reservation_id in self._settled_before:
                raise StoreError(f"reservation id {reservation_id!r} was already settled; use a new id")
            cells = self._cells
            several = len(lines) > 1
            pending: dict[str, Amounts] | None = None  # earlier lines of this request that land on a key
            for line in lines:
                keys = line.keys
                if not keys:
                    require_keys(lines)
                n = t = r = 0
                for key in keys:
                    cell = cells.get(key)
                    if cell is not None:
                        n += cell.sn + cell.rn
                        t += cell.st + cell.rt
                        r += cell.sr + cell.rr
                    if pending is not None and key in pending:
                        extra = pending[key]
                        n += extra.nanos
                        t += extra.tokens
                        r += extra.requests
                limits, amount = line.limits, line.amount
                cap_n, cap_t, cap_r = limits.nanos, limits.tokens, limits.requests
                if (
                    (cap_n is not None and n + amount.nanos > cap_n)
                    or (cap_t is not None and t + amount.tokens > cap_t)
                    or (cap_r is not None and r + amount.requests > cap_r)
                ):
                    return Refusal(line.budget, Amounts(n, t, r), limits)
                if several:
                    head = keys[0]
                    if pending is None:
                        pending = {head: amount}
                    else:
                        pending[head] = pending[head] + amount if head in pending else amount
            for line in lines:
                head = line.keys[0]
                cell = cells.get(head)
                if cell is None:
                    cell = cells[head] = _Cell()
                amount = line.amount
                cell.rn += amount.nanos
                cell.rt += amount.tokens
                cell.rr += amount.requests
                expires_at = line.expires_at
                if expires_at is not None and (cell.expires is None or expires_at > cell.expires):
                    self._extend(head, cell, expires_at)
            expires = now + lease_seconds
            reservation = Reservation(reservation_id, lines, expires)
            self._live[reservation_id] = reservation
            heapq.heappush(self._heap, (expires, reservation_id))
            return reservation

    def settle(self, reservation: Reservation, actual: Amounts, *, now: float, record: bytes | None = None) -> str:
        with self._lock:
            if self._heap and self._heap[0][0] <= now:
                self._reap(now)
            rid = reservation.id
            if rid in self._settled or rid in self._settled_before:
                return SettleOutcome.DUPLICATE
            live = self._live.get(rid)
            lines = reservation.lines
            # Lines this store granted had their keys checked then; release them in the same pass as the spend.
            inline = live is not None and live.lines is lines
            if not inline:
                require_keys(lines)
            if live is not None:
                del self._live[rid]
                if not inline:
                    self._release(live)
                if len(self._heap) > 2 * len(self._live) + 64:  # settled leases left stale entries: compact
                    self._heap = [(r.lease_expires_at, r.id) for r in self._live.values()]
                    heapq.heapify(self._heap)
            cells = self._cells
            nanos, tokens, requests = actual.nanos, actual.tokens, actual.requests
            for line in lines:
                head = line.keys[0]
                cell = cells.get(head)
                if cell is None:
                    cell = cells[head] = _Cell()
                if inline:
                    held = line.amount
                    cell.rn -= held.nanos
                    cell.rt -= held.tokens
                    cell.rr -= held.requests
                cell.sn += nanos
                cell.st += tokens
                cell.sr += requests
                expires_at = line.expires_at
                if expires_at is not None and (cell.expires is None or expires_at > cell.expires):
                    self._extend(head, cell, expires_at)
            if self._rotate_at is None or now >= self._rotate_at or len(self._settled) >= self._settled_max:
                self._rotate_settled(now)
            self._settled[rid] = None
            if not self._intact:
                self._lost.add(rid)
            if record is not None:
                self._outbox[rid] = record
            return SettleOutcome.SETTLED if live is not None else SettleOutcome.LATE

    def record(self, entry_id: str, record: bytes) -> None:
        with self._lock:
            self._outbox.setdefault(entry_id, record)

    def marker(self) -> str | None:
        with self._lock:
            return self._marker

    def claim_loss(self, *, now: float) -> bool:
        with self._lock:
            if self._marker is not None:
                return False
            self._marker = f"{NOTICED}{now}"
            return True

    def lost_ids(self) -> set[str]:
        with self._lock:
            return set(self._lost)

    def restore(self, spent: Mapping[str, Restored], *, epoch: str, now: float) -> bool:
        with self._lock:
            if self._intact:
                return False
            for key, (amounts, expires_at) in spent.items():
                cell = self._cells.get(key)
                if cell is None:
                    cell = self._cells[key] = _Cell()
                cell.sn += amounts.nanos
                cell.st += amounts.tokens
                cell.sr += amounts.requests
                if expires_at is not None and (cell.expires is None or expires_at > cell.expires):
                    self._extend(key, cell, expires_at)
            self._marker, self._intact = epoch, True
            self._lost.clear()
            return True

    def outbox(self, limit: int) -> list[OutboxEntry]:
        with self._lock:
            return [OutboxEntry(rid, rec) for rid, rec in itertools.islice(self._outbox.items(), limit)]

    def outbox_done(self, entries: list[OutboxEntry]) -> None:
        with self._lock:
            for entry in entries:
                self._outbox.pop(entry.id, None)

    def renew(self, reservation: Reservation, *, now: float, lease_seconds: float) -> bool:
        with self._lock:
            live = self._live.get(reservation.id)
            if live is None or live.lease_expires_at <= now:
                return False
            expires = now + lease_seconds
            if expires > live.lease_expires_at:  # extend only: a short heartbeat never cuts a lease
                self._live[reservation.id] = Reservation(live.id, live.lines, expires)
                heapq.heappush(self._heap, (expires, live.id))
            return True

    def reap(self, *, now: float) -> int:
        with self._lock:
            return self._reap(now)

    def counters(self, keys: tuple[str, ...], *, now: float) -> dict[str, Counter]:
        with self._lock:
            if (self._heap and self._heap[0][0] <= now) or (self._drops and self._drops[0][0] < now):
                self._reap(now)
            result: dict[str, Counter] = {}
            for key in keys:
                cell = self._cells.get(key)
                result[key] = (
                    Counter()
                    if cell is None
                    else Counter(Amounts(cell.sn, cell.st, cell.sr), Amounts(cell.rn, cell.rt, cell.rr))
                )
            return result

    def keys_with_prefix(self, prefix: str, *, now: float) -> list[str]:
        with self._lock:
            self._reap(now)
            return sorted(key for key in self._cells if key.startswith(prefix))

    # -- internals (lock held) ------------------------------------------------------------------------

    def _reap(self, now: float) -> int:
        heap, live_map = self._heap, self._live
        reaped = 0
        while heap and heap[0][0] <= now:
            expires, rid = heapq.heappop(heap)
            live = live_map.get(rid)
            if live is None or live.lease_expires_at != expires:
                continue  # settled or renewed since this entry was pushed
            del live_map[rid]
            self._release(live)
            reaped += 1
        drops, cells, margin = self._drops, self._cells, self._margin
        while drops and drops[0][0] < now:
            _, key = heapq.heappop(drops)
            cell = cells.get(key)
            if cell is None or cell.expires is None or cell.expires + margin >= now:
                continue  # dropped already, or its expiry moved on since this entry was pushed
            if cell.rn or cell.rt or cell.rr:  # a live lease still holds it: look again when that may be over
                heapq.heappush(drops, (now + margin, key))
                continue
            del cells[key]
        return reaped

    def _extend(self, key: str, cell: _Cell, expires_at: float) -> None:
        cell.expires = expires_at
        heapq.heappush(self._drops, (expires_at + self._margin, key))

    def _release(self, reservation: Reservation) -> None:
        for line in reservation.lines:
            cell = self._cells[line.keys[0]]
            cell.rn -= line.amount.nanos
            cell.rt -= line.amount.tokens
            cell.rr -= line.amount.requests

    def _rotate_settled(self, now: float) -> None:
        if self._rotate_at is not None:
            self._settled_before, self._settled = self._settled, {}
        self._rotate_at = now + self._settled_ttl
