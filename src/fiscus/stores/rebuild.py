"""Rebuild the current windows' budget counters from the ledger, after a store lost its state.

Every settled call is a `CostEvent` in the ledger; a counter key is its budget instance (`b:<budget>|<dim>=<value>`,
`fiscus.engine.plan.instance_stem`) and window instance (`|day:2026-12-06`, a rolling bucket, a session), so the
counters of the windows live now are the sums of the events that fall in them: per event its cost in nano-dollars
(rounded up, as the governor settles it), its tokens and one request. Refused and partial calls held no
reservation and count nothing. Past windows are not rebuilt (their counters are due to be dropped anyway). The
fired-threshold marks and the current minute's throttle counters come back in the same pass
(`fiscus.stores.rebuild_marks`), so a rebuilt store announces nothing twice.

Pure but for reading the ledger through its query interface (`Ledger.events`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Set
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import quote

from fiscus.engine.plan import hold_key, instance_stem, scope_values
from fiscus.engine.windows import window_instance
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.ledger.base import Ledger
from fiscus.meters import Amounts
from fiscus.money import from_nanos, to_nanos
from fiscus.policy.types import Budget, Policy
from fiscus.stores.base import NOTICED, BudgetStore, Restored, new_epoch
from fiscus.stores.rebuild_marks import Marks, without_calls

_NOT_CHARGED = (CallStatus.BLOCKED, CallStatus.PARTIAL)


def since(policy: Policy, now: float) -> datetime | None:
    """The earliest moment an event can still count in a live window; None (the whole ledger) when a budget's
    window never resets or follows sessions."""
    starts: list[float] = []
    for budget in policy.budgets:
        window = budget.window
        if window.kind not in ("calendar", "rolling"):
            return None
        instance = window_instance(window, now, policy.timezone, session=None, session_ttl=0)
        assert instance is not None and instance.starts_at is not None
        starts.append(instance.starts_at)
    return datetime.fromtimestamp(min(starts), UTC) if starts else None


def amounts_of(event: CostEvent) -> Amounts:
    """What the governor settled for this call: its cost (nano-dollars, rounded up), tokens and one request."""
    usage = event.usage
    tokens = (
        usage.input_tokens
        + usage.cache_read_tokens
        + usage.cache_write_5m_tokens
        + usage.cache_write_1h_tokens
        + usage.output_tokens
    )
    return Amounts(to_nanos(event.cost.total), tokens, 1)


class _Slot:
    """Where one budget's events land at `now`: the counter key of an event's window instance, if still live."""

    def __init__(self, budget: Budget, policy: Policy, now: float) -> None:
        self.budget = budget
        self.window = window = budget.window
        self.now = now
        self.session_ttl = policy.session_ttl_seconds
        if window.kind in ("calendar", "rolling"):
            live = window_instance(window, now, policy.timezone, session=None, session_ttl=0)
            assert live is not None
            self.live = live
            self.size = window.seconds // window.buckets if window.kind == "rolling" else 0

    def key(self, event: CostEvent, ts: float) -> tuple[str, float | None] | None:
        """(window id, its counters' `expires_at`) for an event at `ts`; None when its window is over."""
        window, live = self.window, getattr(self, "live", None)
        if window.kind == "calendar":
            assert live is not None and live.starts_at is not None and live.resets_at is not None
            return (live.ids[0], live.expires_at) if live.starts_at <= ts < live.resets_at else None
        if window.kind == "rolling":
            bucket, current = int(ts // self.size), int(self.now // self.size)
            if not current - window.buckets < bucket <= current:
                return None
            return f"r{window.seconds}:{bucket}", float((bucket + window.buckets) * self.size)
        if window.kind == "session":
            session = event.attribution.session
            if session is None:
                return None
            return f"session:{quote(session, safe='')}", ts + self.session_ttl
        return "never", None


@dataclass(slots=True)
class Rebuilt:
    """What a rebuild puts back: the budget counters (key → (spent, expires_at)) and the marks beside them."""

    counters: dict[str, Restored] = field(default_factory=dict)
    marks: dict[str, Restored] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.counters or self.marks)

    @property
    def spent(self) -> Decimal:
        return from_nanos(sum(amounts.nanos for amounts, _ in self.counters.values()))

    def restored(self) -> dict[str, Restored]:
        """Everything a store restores: the counters, each one's worst-case counter, the marks."""
        return {**with_holds(self.counters), **self.marks}


def rebuild_counters(
    policy: Policy, events: Iterable[CostEvent], *, now: float, exclude: Set[str] = frozenset()
) -> dict[str, Restored]:
    """Counter key → (spent, expires_at) for the windows live at `now`, summed over `events` (ids in `exclude`
    left out: their spend is on the store's counters already). Session counters live `session_ttl` past their
    latest call: a session whose latest call is older is left out."""
    return rebuild_state(policy, events, now=now, exclude=exclude).counters


def rebuild_state(
    policy: Policy, events: Iterable[CostEvent], *, now: float, exclude: Set[str] = frozenset()
) -> Rebuilt:
    """`rebuild_counters` and the marks (`fiscus.stores.rebuild_marks`) in one pass over `events`."""
    slots = [_Slot(budget, policy, now) for budget in policy.budgets]
    marks = Marks(policy, now)
    spent: dict[str, list[int]] = {}
    expiry: dict[str, float | None] = {}
    stems: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
    for event in events:
        ts = event.timestamp.timestamp()
        counted = event.id not in exclude
        marks.see(event, ts, counted=counted)
        if event.status in _NOT_CHARGED or not counted:
            continue
        amounts: Amounts | None = None
        for slot in slots:
            values = scope_values(slot.budget, event.attribution)
            if values is None:
                continue
            found = slot.key(event, ts)
            if found is None:
                continue
            stem = stems.get((slot.budget.name, values))
            if stem is None:
                stem = stems[(slot.budget.name, values)] = instance_stem(slot.budget, values)
            key = f"{stem}|{found[0]}"
            amounts = amounts or amounts_of(event)
            total = spent.setdefault(key, [0, 0, 0])
            total[0] += amounts.nanos
            total[1] += amounts.tokens
            total[2] += amounts.requests
            before = expiry.get(key)
            expiry[key] = found[1] if before is None or (found[1] is not None and found[1] > before) else before
    restored = {key: (Amounts(*total), expiry[key]) for key, total in spent.items()}
    # a session whose latest call is more than `session_ttl` ago is over: its counters are not live
    counters = {key: value for key, value in restored.items() if value[1] is None or value[1] > now}
    return Rebuilt(counters, marks.restored())


def with_holds(figures: Mapping[str, Restored]) -> dict[str, Restored]:
    """The budget counters and, beside each, its worst-case counter with the same spend (`engine.plan.hold_key`):
    what a store restores."""
    return {**figures, **{hold_key(key): value for key, value in figures.items()}}


def rebuild_from_ledger(
    policy: Policy, ledger: Ledger, *, now: float, lost_ids: Callable[[], set[str]] = frozenset
) -> Rebuilt:
    """`rebuild_state` over the ledger's events that can still count at `now`, leaving out every call settled
    on the store since the loss (`lost_ids`: read before and after the ledger, so a call settled and moved to the
    ledger while it was read is taken out again): those are on the store's counters already."""
    before = set(lost_ids())
    seen: set[str] = set()

    def reading() -> Iterator[CostEvent]:
        for event in ledger.events(since=since(policy, now)):
            seen.add(event.id)
            yield event

    rebuilt = rebuild_state(policy, reading(), now=now, exclude=before)
    late = (set(lost_ids()) - before) & seen
    if late:
        events = [event for event_id in sorted(late) if (event := ledger.get(event_id)) is not None]
        figures = rebuilt.counters
        for key, (amounts, _) in rebuild_counters(policy, events, now=now).items():
            total, expires_at = figures[key]
            left = (total.nanos - amounts.nanos, total.tokens - amounts.tokens, total.requests - amounts.requests)
            figures[key] = (Amounts(*left), expires_at)
        rebuilt.marks = without_calls(policy, rebuilt.marks, events, now)
    return rebuilt


def rebuild_store(policy: Policy, store: BudgetStore, ledger: Ledger, *, now: float) -> tuple[bool, Rebuilt]:
    """An operator's rebuild (`fiscus budgets rebuild`): when `store` is not whole, put the current windows'
    counters and marks back from `ledger` (the store's outbox moved into the ledger first). (restored, what was
    rebuilt); not restored when the store was whole (nothing changed) or another process restored it first."""
    from fiscus.ledger.writer import LedgerWriter

    marker = store.marker()
    if marker is not None and not marker.startswith(NOTICED):
        return False, Rebuilt()
    store.claim_loss(now=now)
    writer = LedgerWriter(ledger, outbox=store if store.durable else None)
    writer.flush(10.0)
    writer.close()
    rebuilt = rebuild_from_ledger(policy, ledger, now=now, lost_ids=store.lost_ids)
    return store.restore(rebuilt.restored(), epoch=new_epoch(), now=now), rebuilt
