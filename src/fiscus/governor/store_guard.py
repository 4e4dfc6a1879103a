"""What admission does when the budget store lost its state or cannot be reached (`store.on_store_loss`).

A lost store (`StoreLost`: its marker is gone — an emptied Redis, a replaced SQLite file, a restarted memory
store) would admit every call against counters starting from zero. Per policy:

- `rebuild` (the default): the counters of the current windows are summed from the ledger and put back
  (`fiscus.stores.rebuild`) before anything is admitted; calls meanwhile are refused (`StoreUnavailable`,
  a 503 with retry-after on the gateway). Settles of calls already running still land, and count once.
- `fail_closed`: calls are refused until an operator rebuilds (`fiscus budgets rebuild`); this process looks
  at the store's marker once a second and admits again as soon as it is whole.
- `fail_open`: calls are admitted with a warning, on budgets counted from zero.

A store with nothing in the ledger's current windows lost nothing: it is marked whole silently (a new
deployment, a restart after midnight). A store that cannot be reached (`StoreUnreachable`) is refused
(`rebuild`, `fail_closed`) or admitted without a reservation (`fail_open`; the spend lands on the counters by
the settle retry once the store answers) for `DOWN_RETRY_S`, then tried again: recovery needs no restart, and a
store that came back empty is then found lost. Each loss and outage is announced once (an event for the
listeners and notify channels, a log line); `/metrics` counts them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from decimal import Decimal
from typing import TYPE_CHECKING

from fiscus.engine.ports import Amounts, Counter, Refusal, Reservation, ReserveLine
from fiscus.errors import StoreError, StoreLost, StoreUnavailable, StoreUnreachable
from fiscus.events.store_events import BudgetStoreBack, BudgetStoreDown, BudgetStoreLost
from fiscus.governor.admission import Admission
from fiscus.governor.drive import adrive, drive
from fiscus.governor.steps import Steps
from fiscus.stores.base import BudgetStore, OutboxEntry, new_epoch
from fiscus.stores.rebuild import Rebuilt, rebuild_from_ledger

if TYPE_CHECKING:
    from fiscus.engine.request import CallRequest
    from fiscus.governor.governor import Governor

POLICIES = ("rebuild", "fail_closed", "fail_open")
DOWN_RETRY_S = 1.0  # an unreachable store is tried again after this long; meanwhile calls are answered at once
CLOSED_CHECK_S = 1.0  # under fail_closed, how often a process looks whether an operator rebuilt the store
FLUSH_S = 5.0  # at most this long to move the outbox into the ledger before a rebuild reads it

log = logging.getLogger("fiscus.governor")


class State:
    OK = "ok"
    REBUILDING = "rebuilding"
    CLOSED = "closed"  # lost, fail_closed: waiting for an operator
    DOWN = "down"


class StoreGuard:
    def __init__(self, governor: Governor, policy: str = "rebuild", *, down_retry_s: float = DOWN_RETRY_S) -> None:
        if policy not in POLICIES:
            raise ValueError(f"on_store_loss must be one of {', '.join(POLICIES)}, not {policy!r}")
        self.policy = policy
        self.state = State.OK  # read without the lock on every admission: one attribute compare when OK
        self.losses = 0  # losses this process handled (announced or not)
        self.announced: dict[tuple[str, str], int] = {}  # (lost | down | back, policy) → announcements, for /metrics
        self._governor = governor
        self._down_retry_s = down_retry_s
        self._lock = threading.Lock()
        self._retry_at = 0.0  # DOWN: when to try the store again; CLOSED: when to look at its marker again

    @property
    def _where(self) -> str:
        return type(self._governor.store).__name__

    # -- admission ---------------------------------------------------------------------------------------

    def steps(self, request: CallRequest, *, inline: bool = True) -> Steps[Admission]:
        """The governor's admission steps behind this guard (both doors run these). `inline`: handle a loss right
        here (a blocking rebuild); else let `StoreLost` out for the caller to handle off its event loop."""
        governor = self._governor
        if self.state is not State.OK and self._gate(governor.now()):
            return drive(governor.plain_admit_steps(request), OPEN_STORE)
        try:
            admission = yield from governor.plain_admit_steps(request)
        except StoreLost:
            if self.state is State.DOWN:
                self.back()  # it answers again, without its state
            if not inline:
                raise
            self.lost(governor.now())
            try:
                return (yield from governor.plain_admit_steps(request))
            except StoreLost:
                raise self._rebuilding() from None
        except StoreUnreachable as exc:
            self.down(exc, governor.now())  # raises unless fail_open
            return drive(governor.plain_admit_steps(request), OPEN_STORE)
        if self.state is State.DOWN:
            self.back()
        return admission

    async def aadmit(self, request: CallRequest) -> Admission:
        """`steps` on the async driver, with a rebuild read from the ledger in a thread (the loop keeps answering
        other calls meanwhile: refused while it runs)."""
        governor = self._governor
        try:
            return await adrive(self.steps(request, inline=False), governor.store)
        except StoreLost:
            await asyncio.to_thread(self.lost, governor.now())
        try:
            return await adrive(self.steps(request, inline=False), governor.store)
        except StoreLost:
            raise self._rebuilding() from None

    def _gate(self, now: float) -> bool:
        """Not OK: True to admit without the store (fail_open while it is down); False to try the store; else
        raises `StoreUnavailable` at once."""
        state = self.state
        if state is State.REBUILDING:
            raise self._rebuilding()
        if state is State.CLOSED:
            if now < self._retry_at:
                raise self._closed()
            self._retry_at = now + CLOSED_CHECK_S
            if not _whole(self._marker()):
                raise self._closed()
            self.state = State.OK
            log.warning("fiscus: the budget store is whole again; admitting calls")
            return False
        if state is State.DOWN and now < self._retry_at:
            if self.policy == "fail_open":
                return True
            raise self._unreachable()
        return False

    def start(self) -> None:
        """At start-up: a store without its marker (a restarted memory store, an emptied Redis, a new SQLite file) is
        handled now, before the first call and before anything else claims in it. An unreachable or closed store
        is left to the first admission, which answers per policy."""
        try:
            marker = self._governor.store.marker()
        except StoreError as exc:
            log.warning("fiscus: budget store not reachable at start (%s); calls are answered per policy", exc)
            return
        if _whole(marker):
            return
        try:
            self.lost(self._governor.now())
        except StoreUnavailable as exc:
            log.warning("fiscus: %s", exc)

    # -- a lost store --------------------------------------------------------------------------------------

    def lost(self, now: float) -> None:
        """Handle a `StoreLost` met by an admission: returns when admission may go on (the store is whole again, or
        accepted empty under fail_open); else raises `StoreUnavailable`."""
        with self._lock:
            if self.state is State.REBUILDING:
                raise self._rebuilding()
            if self.state is State.CLOSED:
                raise self._closed()
            self.state = State.REBUILDING
        try:
            self.state = self._handle_loss(now)
        except StoreUnavailable:
            raise
        except StoreError as exc:  # the store failed meanwhile: the next admission looks again
            self.state = State.OK
            raise StoreUnavailable(f"budget store lost its state and could not be rebuilt yet: {exc}") from exc
        except BaseException:
            self.state = State.OK
            raise
        if self.state is State.CLOSED:
            raise self._closed()

    def _handle_loss(self, now: float) -> str:
        store = self._governor.store
        noticed = store.claim_loss(now=now)  # the first worker to notice announces
        if _whole(store.marker()):
            return State.OK  # another worker rebuilt it meanwhile
        rebuilt = self.figures(now)
        if not rebuilt:  # the ledger has nothing in the current windows: nothing was lost (a new deployment)
            store.restore({}, epoch=new_epoch(), now=now)
            return State.OK
        self.losses += 1
        if self.policy == "fail_open":
            store.restore({}, epoch=new_epoch(), now=now)
            if noticed:
                self._announce_loss("calls are admitted on budgets counted from zero (on_store_loss: fail_open)")
            return State.OK
        spent, counters = rebuilt.spent, len(rebuilt.counters)
        if self.policy == "fail_closed" and store.durable:  # a memory store: no operator can reach it but us
            if noticed:
                self._announce_loss(
                    f"calls are refused until an operator rebuilds it (fiscus budgets rebuild); the ledger holds "
                    f"${spent} in {counters} live counters (on_store_loss: fail_closed)",
                    rebuilt=0,
                    spent=spent,
                )
            self._retry_at = now + CLOSED_CHECK_S
            return State.CLOSED
        store.restore(rebuilt.restored(), epoch=new_epoch(), now=now)  # False: another worker's figures stand
        if noticed:
            self._announce_loss(
                f"{counters} counters rebuilt from the ledger (${spent} spent in the current windows"
                f"{_marks(rebuilt)}) before admitting calls again (on_store_loss: rebuild)",
                rebuilt=counters,
                spent=spent,
            )
        return State.OK

    def figures(self, now: float) -> Rebuilt:
        """The current windows' counters and marks from the ledger, without the calls settled since the loss
        (those are on the store's counters already). The outbox is moved into the ledger first."""
        governor = self._governor
        writer = governor.ledger
        source = getattr(writer, "ledger", None)
        if source is None:
            log.warning("fiscus: the budget store lost its state and there is no ledger to rebuild it from")
            return Rebuilt()
        if governor.settle_retry is not None:
            governor.settle_retry.wait(timeout=1.0)
        flush = getattr(writer, "flush", None)
        if flush is not None:
            flush(FLUSH_S)
        return rebuild_from_ledger(governor.policy, source, now=now, lost_ids=governor.store.lost_ids)

    def _announce_loss(self, what: str, *, rebuilt: int = 0, spent: Decimal = Decimal(0)) -> None:
        message = f"budget store {self._where} lost its state: {what}"
        log.warning("fiscus: %s", message)
        self._emit(BudgetStoreLost(self._where, self.policy, message, rebuilt, spent))

    # -- an unreachable store -----------------------------------------------------------------------------

    def down(self, exc: StoreUnreachable, now: float) -> None:
        """An admission could not reach the store: answer per policy (raises unless fail_open) until
        `DOWN_RETRY_S` has passed, then try again."""
        with self._lock:
            first = self.state is not State.DOWN
            self.state, self._retry_at = State.DOWN, now + self._down_retry_s
        if first:
            does = (
                "calls are admitted without their budgets until it answers (on_store_loss: fail_open)"
                if self.policy == "fail_open"
                else "calls are refused until it answers"
            )
            message = f"budget store {self._where} cannot be reached ({exc}); {does}"
            log.error("fiscus: %s", message)
            self._emit(BudgetStoreDown(self._where, self.policy, message))
        if self.policy != "fail_open":
            raise self._unreachable(str(exc)) from exc

    def back(self) -> None:
        with self._lock:
            if self.state is not State.DOWN:
                return
            self.state = State.OK
        message = f"budget store {self._where} answers again; calls are admitted on their budgets"
        log.warning("fiscus: %s", message)
        self._emit(BudgetStoreBack(self._where, message))

    def _emit(self, event: BudgetStoreLost | BudgetStoreDown | BudgetStoreBack) -> None:
        key = (type(event).__name__.removeprefix("BudgetStore").lower(), self.policy)
        self.announced[key] = self.announced.get(key, 0) + 1
        self._governor.on_event(event)

    # -- refusals ------------------------------------------------------------------------------------------

    def _marker(self) -> str | None:
        try:
            return self._governor.store.marker()
        except StoreError:
            return None

    def _rebuilding(self) -> StoreUnavailable:
        return StoreUnavailable(
            "budget store lost its state; its budgets are being rebuilt from the ledger: retry in a second",
            retry_after=1,
        )

    def _closed(self) -> StoreUnavailable:
        return StoreUnavailable(
            "budget store lost its state; calls are refused until an operator rebuilds it (fiscus budgets rebuild)",
            retry_after=5,
        )

    def _unreachable(self, why: str = "") -> StoreUnavailable:
        detail = f" ({why})" if why else ""
        return StoreUnavailable(f"budget store cannot be reached{detail}; retry shortly", retry_after=1)


def _marks(rebuilt: Rebuilt) -> str:
    """The marks a rebuild put back, for the announcement: thresholds already announced, throttled minutes."""
    fired = sum(key.startswith("f:") for key in rebuilt.marks)
    rate = len(rebuilt.marks) - fired
    parts = [f"{fired} thresholds already announced" if fired else "", f"{rate} throttle counters" if rate else ""]
    said = " and ".join(part for part in parts if part)
    return f"; {said} kept" if said else ""


def _whole(marker: str | None) -> bool:
    return marker is not None and not marker.startswith("L:")


class OpenStore(BudgetStore):
    """The store a fail-open admission runs against while the real one cannot be reached: every reservation is
    granted (held nowhere), every counter reads zero. The call's settle goes to the real store and is retried until
    it lands there, so the spend is counted once the store answers."""

    def marker(self) -> str | None:
        return "open"

    def claim_loss(self, *, now: float) -> bool:
        return False

    def lost_ids(self) -> set[str]:
        return set()

    def restore(self, spent: object, *, epoch: str, now: float) -> bool:  # type: ignore[override]
        return False

    def reserve(
        self, reservation_id: str, lines: tuple[ReserveLine, ...], *, now: float, lease_seconds: float
    ) -> Reservation | Refusal:
        return Reservation(reservation_id, lines, now + lease_seconds)

    def settle(self, reservation: Reservation, actual: Amounts, *, now: float, record: bytes | None = None) -> str:
        return "late"

    def record(self, entry_id: str, record: bytes) -> None:
        return None

    def outbox(self, limit: int) -> list[OutboxEntry]:
        return []

    def outbox_done(self, entries: list[OutboxEntry]) -> None:
        return None

    def renew(self, reservation: Reservation, *, now: float, lease_seconds: float) -> bool:
        return False

    def reap(self, *, now: float) -> int:
        return 0

    def counters(self, keys: tuple[str, ...], *, now: float) -> dict[str, Counter]:
        return {key: Counter() for key in keys}


OPEN_STORE = OpenStore()
