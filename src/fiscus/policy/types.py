"""The compiled policy: frozen plain data the engine reads on every call (no validation on the hot path)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from fiscus.engine.decision import Action
from fiscus.meters import Limits
from fiscus.policy.alerts import AlertSettings
from fiscus.policy.ladders import Ladders

EACH = "*"  # a scope value meaning "one budget per distinct value of this dimension"


@dataclass(frozen=True, slots=True)
class Window:
    """`kind`: calendar (unit hour|day|week|month in the policy's zone), rolling (seconds over `buckets`
    time buckets), session (one instance per session id) or never (prepaid: one instance for ever)."""

    kind: str
    unit: str | None = None
    seconds: int = 0
    buckets: int = 1

    @property
    def label(self) -> str:
        if self.kind == "calendar":
            return str(self.unit)
        if self.kind == "rolling":
            return f"rolling {_duration_label(self.seconds)}"
        return self.kind


@dataclass(frozen=True, slots=True)
class Threshold:
    """At `at` × the nominal limit, `action` applies. Parameters belong to one action each."""

    at: Decimal
    action: Action
    channel: str | None = None  # notify
    to_tokens: int | None = None  # compress: absolute context target
    fraction: Decimal | None = None  # compress: share of the context kept; throttle: share of calls admitted
    per_minute: int | None = None  # throttle: calls admitted per minute
    override: bool = False  # block: a granted override passes
    message: str | None = None

    @property
    def tag(self) -> str:
        """Identifies the threshold inside its budget (stable across restarts: used in store keys)."""
        return f"{self.at}:{self.action}" + (f":{self.channel}" if self.channel else "")


@dataclass(frozen=True, slots=True)
class Budget:
    """One budget. `scope` pairs a dimension with a value, a frozenset of values (any of) or `EACH`.

    `limits` is the nominal budget (utilisation is reported against it); the store enforces `cap`, which is
    higher only when thresholds above 1.0 exist (spend past 100 % under a throttle, up to a hard stop).
    """

    name: str
    scope: tuple[tuple[str, str | frozenset[str]], ...]
    window: Window
    limits: Limits
    cap: Limits
    thresholds: tuple[Threshold, ...]
    exhausted: Action  # PARTIAL or BLOCK: what a call that does not fit gets
    exhausted_override: bool = False
    description: str | None = None

    @property
    def each_dimensions(self) -> tuple[str, ...]:
        return tuple(dim for dim, value in self.scope if value == EACH)

    def scope_label(self) -> str:
        if not self.scope:
            return "everything"
        parts = []
        for dim, value in self.scope:
            shown = ",".join(sorted(value)) if isinstance(value, frozenset) else value
            parts.append(f"{dim}={shown}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class RunTarget:
    """What one case (session) should cost: P50 the operating target, P95 the ceiling."""

    p50: Decimal
    p95: Decimal
    source: str = "policy"


@dataclass(frozen=True, slots=True)
class SummaryRule:
    """A task class's rolling summarisation (see `fiscus.shaping.summarise`)."""

    keep_last: int = 4
    refresh_every: int = 2
    max_tokens: int = 600
    model: str | None = None  # None: the cheapest model of the call's ladder


@dataclass(frozen=True, slots=True)
class ResponseCacheRule:
    """A task class's exact response cache (see `fiscus.shaping.response_cache`)."""

    ttl_seconds: int = 3600
    max_entries: int = 10_000  # per task class; the oldest entry goes first
    any_temperature: bool = False  # True: cache this class's requests whatever their temperature


@dataclass(frozen=True, slots=True)
class Policy:
    budgets: tuple[Budget, ...] = ()
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    ladders: Ladders = field(default_factory=Ladders.defaults)
    routes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # task class → models, one per ladder
    # task class → {ladder asked from: model of another family}: routes out of a family (gateway, translated)
    cross_routes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    context: Mapping[str, int] = field(default_factory=dict)  # task class → most input tokens a call sends
    summaries: Mapping[str, SummaryRule] = field(default_factory=dict)  # task class → rolling summarisation
    response_cache: Mapping[str, ResponseCacheRule] = field(default_factory=dict)  # task class → exact answers
    deferrable: frozenset[str] = frozenset()  # task classes whose work may wait for the Batch APIs
    default_max_tokens: int = 4096
    min_output_tokens: int = 64
    # Safety margin on the input estimate a reservation covers (0.2: 20 % over the calibrated count)
    estimate_margin: Decimal = Decimal("0.2")
    reserve_for_critical: Decimal = Decimal(0)
    session_ttl_seconds: int = 7 * 86400
    source: str | None = None
    alerts: AlertSettings = field(default_factory=AlertSettings)
    owners: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # dimension → value → owner
    default_owner: str | None = None
    targets: Mapping[str, Mapping[str, RunTarget]] = field(default_factory=dict)  # dimension → value → target
    cache_hit_target: Decimal = Decimal("0.7")
    version: str | None = None  # a hash of the validated rules (`policy.load.policy_version`); None if built in code

    def owner_of(self, subject: Mapping[str, str | None]) -> str | None:
        """Who answers for an anomaly about `subject` (dimension → value): the first dimension of it with an
        owner in the policy, else the default owner."""
        for dim, value in subject.items():
            found = self.owners.get(dim, {}).get(value) if value is not None else None
            if found:
                return found
        return self.default_owner

    def budget(self, name: str) -> Budget:
        for budget in self.budgets:
            if budget.name == name:
                return budget
        raise KeyError(name)


def _duration_label(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
