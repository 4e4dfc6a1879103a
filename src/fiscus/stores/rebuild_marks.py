"""The store's marks that a rebuild gets back from the ledger beside the budget counters, so a lost store neither
announces a threshold twice in a window nor forgets a throttle's minute.

- Fired-threshold marks (`f:<instance>|<window>|<threshold>`, `fiscus.governor.announce`): the call whose
  admission claimed one carries its key in its cost event (tag `announced`, refused calls too: an exhausted budget
  is announced by the call it refuses). A mark comes back while the window it was claimed in lives, until the
  same moment the claim would have let it go.
- Per-minute throttle counters (`t:<instance>|<minute>`): the current minute's charged calls decided `throttle`,
  one request each, on every instance of a budget with a per-minute throttle that the call fell under (where
  another budget throttled the call, its minute is counted a little high: stricter, never looser, for under a
  minute).

Pure: fed the same events as `fiscus.stores.rebuild.rebuild_counters`, in the same pass.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from fiscus.engine.plan import instance_stem, scope_values
from fiscus.engine.windows import WindowInstance, window_instance
from fiscus.events.cost_event import CallStatus, CostEvent
from fiscus.meters import Amounts
from fiscus.policy.types import Budget, Policy
from fiscus.stores.base import Restored

ANNOUNCED_TAG = "announced"
RATE_WINDOW_SECONDS = 60  # as the engine's per-minute throttle counters
_SAFE = ":|=/@+.-_~"  # what a fired key keeps as is in the tag; a space separates keys
_NOT_CHARGED = (CallStatus.BLOCKED, CallStatus.PARTIAL)


def announced_tag(keys: tuple[str, ...]) -> str:
    """The tag value of the fired keys one call claimed."""
    return " ".join(quote(key, safe=_SAFE) for key in keys)


def announced_keys(event: CostEvent) -> list[str]:
    value = event.tags.get(ANNOUNCED_TAG)
    return [unquote(part) for part in value.split(" ") if part] if value else []


def announce_period(budget: Budget, instance: WindowInstance) -> str:
    """The window part of a fired key, as the engine forms it: the instance, or for a rolling window the period of
    its own length the current bucket falls in."""
    if budget.window.kind != "rolling":
        return instance.ids[0]
    prefix, bucket = instance.ids[0].split(":")
    return f"{prefix}p:{int(bucket) // budget.window.buckets}"


class Marks:
    """Collects the marks of the windows live at `now` from the events `see` is given."""

    def __init__(self, policy: Policy, now: float) -> None:
        self.policy = policy
        self.now = now
        self.minute = int(now // RATE_WINDOW_SECONDS)
        self.fired: dict[str, float | None] = {}  # fired key → when its mark may go
        self.rate: dict[str, int] = {}  # throttle counter key → calls this minute
        self._throttled = [b for b in policy.budgets if any(t.per_minute is not None for t in b.thresholds)]

    def see(self, event: CostEvent, ts: float, *, counted: bool = True) -> None:
        """Take one event's marks; `counted` False for a call already on the store's counters (settled since the
        loss): its fired marks still count (its claim may be older than the loss), its throttle request not."""
        keys = announced_keys(event)
        if keys:
            self._fired(event, ts, keys)
        if (
            counted
            and self._throttled
            and event.decision == "throttle"
            and event.status not in _NOT_CHARGED
            and int(ts // RATE_WINDOW_SECONDS) == self.minute
        ):
            for budget in self._throttled:
                values = scope_values(budget, event.attribution)
                if values is not None:
                    key = f"t:{instance_stem(budget, values)}|{self.minute}"
                    self.rate[key] = self.rate.get(key, 0) + 1

    def _fired(self, event: CostEvent, ts: float, keys: list[str]) -> None:
        policy = self.policy
        for budget in policy.budgets:
            values = scope_values(budget, event.attribution)
            if values is None:
                continue
            stem = f"f:{instance_stem(budget, values)}|"
            mine = [key for key in keys if key.startswith(stem)]
            if not mine:
                continue
            session, ttl = event.attribution.session, policy.session_ttl_seconds
            then = window_instance(budget.window, ts, policy.timezone, session=session, session_ttl=ttl)
            live = window_instance(budget.window, self.now, policy.timezone, session=session, session_ttl=ttl)
            if then is None or live is None:
                continue
            expires_at = then.expires_at
            if expires_at is not None and expires_at <= self.now:
                continue  # the claim would have let it go by now
            # only the period live now: a past one's mark can never be claimed again
            period = f"{stem}{announce_period(budget, live)}|"
            for key in mine:
                if key.startswith(period):
                    before = self.fired.get(key, expires_at)
                    self.fired[key] = None if before is None or expires_at is None else max(before, expires_at)

    def restored(self) -> dict[str, Restored]:
        """Mark key → (what it holds, expires_at), as a store restores it: a fired mark one request (its claim
        counter is full), a throttle counter its calls."""
        marks: dict[str, Restored] = {key: (Amounts(requests=1), expires) for key, expires in self.fired.items()}
        expires = float((self.minute + 2) * RATE_WINDOW_SECONDS)
        marks.update({key: (Amounts(requests=calls), expires) for key, calls in self.rate.items()})
        return marks


def without_calls(
    policy: Policy, marks: dict[str, Restored], events: list[CostEvent], now: float
) -> dict[str, Restored]:
    """`marks` less the throttle requests of `events` (read, then found on the store's counters); a fired mark
    stays: it holds one whoever claimed it."""
    taken = Marks(policy, now)
    for event in events:
        taken.see(event, event.timestamp.timestamp())
    left = dict(marks)
    for key, calls in taken.rate.items():
        if key in left:
            held, expires_at = left[key]
            if held.requests > calls:
                left[key] = (Amounts(requests=held.requests - calls), expires_at)
            else:
                del left[key]
    return left
