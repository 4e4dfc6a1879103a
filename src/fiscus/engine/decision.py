"""`Decision`: what the budgets say about one call before it is made. Pure data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from fiscus.meters import Amounts, Limits


class Action(StrEnum):
    """Budget actions, from mildest to most restrictive. The most restrictive applicable one wins."""

    ALLOW = "allow"
    NOTIFY = "notify"
    WARN = "warn"
    DOWNGRADE = "downgrade"
    COMPRESS = "compress"
    THROTTLE = "throttle"
    PARTIAL = "partial"
    BLOCK = "block"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    @property
    def calls_model(self) -> bool:
        """Whether the call still goes to a model under this action (throttle admits some calls)."""
        return self not in (Action.PARTIAL, Action.BLOCK)


_ORDER = list(Action)
_SEVERITY = {action: index for index, action in enumerate(_ORDER)}


@dataclass(frozen=True, slots=True)
class BudgetReason:
    """One budget's part in a decision: its utilisation and the threshold (and action) it reached."""

    budget: str
    utilisation: Decimal  # spent + reserved over the limit, e.g. Decimal("0.91")
    threshold: Decimal | None
    action: Action
    meter: str = "usd"  # usd | tokens | requests
    resets_at: datetime | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class ThresholdHit:
    """A threshold a budget instance has reached; the governor announces each one once per window."""

    budget: str
    instance: str  # the budget instance's counter key stem (budget name plus per-value scope)
    window_id: str
    tag: str  # the threshold within its budget, or "exhausted"
    at: Decimal | None
    action: Action
    utilisation: Decimal
    channel: str | None = None
    resets_at: datetime | None = None
    expires_at: float | None = None
    # What an announcement tells a person: the instance's scope (each dimension and its value or values), its
    # use (spent + reserved) against the nominal limits, and who made the call that reached it.
    scope: tuple[tuple[str, str], ...] = ()
    used: Amounts | None = None
    limits: Limits | None = None
    caller: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True, unsafe_hash=True)
class Decision:
    """The verdict on one call. Immutable by convention (built on every call; a frozen dataclass would cost
    several times as much to build): derive a changed one with `dataclasses.replace`.

    `model` is the model to call (the next tier down after a downgrade); `max_tokens` the output cap to send
    (clamped so the call cannot cost more than what is left); `compress_to_tokens` a context target when the
    action includes compression; `retry_at` when a blocked call may succeed (the window's reset); `degraded` whether
    a budget downgraded or compressed the call (a task-class route or context window is not a degradation).
    """

    action: Action
    model: str
    requested_model: str
    max_tokens: int
    # The budgets with something to say: every one that reached a threshold or whose action is not allow (a
    # calm budget is left out, so the common call builds none); `Engine.reasons` lists every budget on demand.
    reasons: tuple[BudgetReason, ...] = ()
    compress_to_tokens: int | None = None
    downgraded: bool = False
    retry_at: datetime | None = None
    notify_channels: tuple[str, ...] = ()
    message: str = ""
    extra_actions: tuple[Action, ...] = field(default=())  # e.g. DOWNGRADE + COMPRESS together at 90 %
    # What the governor reserves and announces (filled by the engine; defaults keep hand-made decisions valid).
    reserve: Amounts | None = None  # total over `calls`, on every applicable budget; None when nothing is called
    hits: tuple[ThresholdHit, ...] = ()
    overridden: tuple[str, ...] = ()  # budget instances an override lifted (reserved without a limit)
    override_ids: tuple[str, ...] = ()  # the overrides that did so (recorded on the call's ledger event)
    rate_limited: tuple[str, ...] = ()  # budget instances whose throttle admits a number of calls per minute
    exhausted_budget: str | None = None  # the budget a refused call did not fit in
    # A budget nearing its end changed the work (a smaller model, a compressed context): not equal work, so the
    # call records no ungoverned cost or saving (`fiscus.events.savings`).
    degraded: bool = False
    # The most the call can cost whatever the input estimate's error (hard input bound, full output cap), held
    # on the budgets' worst-case counters; None: `reserve` stands for it.
    hold: Amounts | None = None
    # The input's hard bound (bytes, not the estimate) is what kept this call from running as asked on its
    # model, and the door said it can have the provider count the input exactly (`CallRequest.countable`):
    # admit again with that count (`usage.exact_count`). Such an admission reserved and announced nothing.
    count_helps: bool = False

    @property
    def calls_model(self) -> bool:
        return self.action.calls_model
