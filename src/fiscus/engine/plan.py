"""`Plan`: the budgets a call falls under, their window instances and counter keys, and its worst case."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from urllib.parse import quote

from fiscus.attribution import Attribution
from fiscus.engine.request import CallRequest
from fiscus.engine.windows import WindowInstance
from fiscus.meters import Amounts, Limits
from fiscus.policy.types import EACH, Budget
from fiscus.pricing.sheet import PriceSheet

RATE_SCALE = 10**6  # rates are integer nano-dollars per token × RATE_SCALE: exact for prices to 1e-9 USD/MTok
_PER_MTOK = Decimal(10**9)  # USD per million tokens → nano-dollars per token × RATE_SCALE
UNLIMITED = 1 << 62  # a meter level no counter reaches


def scaled_rate(usd_per_mtok: Decimal) -> int:
    """USD per million tokens as integer nano-dollars per token × RATE_SCALE, rounded up (a worst case never
    undercounts)."""
    return int((usd_per_mtok * _PER_MTOK).to_integral_value(rounding=ROUND_CEILING))


@dataclass(frozen=True, slots=True)
class Rates:
    """A sheet's worst-case prices as integers (nano-dollars per token × RATE_SCALE), computed once per sheet:
    `input` is the dearest input token (any tier, cache writes included), `input_no_cache_write` the dearest for
    a request that writes no cache, `output` the dearest output token."""

    sheet: PriceSheet
    input: int
    input_no_cache_write: int
    output: int

    @classmethod
    def of(cls, sheet: PriceSheet) -> Rates:
        return cls(
            sheet,
            scaled_rate(sheet.max_input_mtok),
            scaled_rate(sheet.max_input_mtok_no_cache_write),
            scaled_rate(sheet.max_output_mtok),
        )

    def input_for(self, request: CallRequest) -> int:
        return self.input if request.cache_writes else self.input_no_cache_write

    def input_cost(self, request: CallRequest, tokens_in: int) -> int:
        """Worst-case cost of `tokens_in` input tokens (scaled): only the cacheable prefix can be a cache write."""
        if not request.cache_writes:
            return tokens_in * self.input_no_cache_write
        bound = request.cache_write_tokens
        writes = tokens_in if bound is None else min(bound, tokens_in)
        return writes * self.input + (tokens_in - writes) * self.input_no_cache_write


@dataclass(frozen=True, slots=True)
class PlanLine:
    """One applicable budget instance: `instance` is its key stem, `keys` its live counter keys (keys[0]
    current), `cap` the limit the store enforces for this request (less the critical reserve for background).
    `quiet` is, per meter (nano-dollars, tokens, requests), the use at which the budget's first threshold is
    reached: below it on every meter the budget has nothing to say and the engine's fast path applies."""

    budget: Budget
    instance: str
    keys: tuple[str, ...]
    window: WindowInstance
    cap: Limits
    values: tuple[tuple[str, str], ...] = ()  # the per-value scope this instance is for
    quiet: tuple[int, int, int] = (0, 0, 0)  # (0, 0, 0): always assess in full


class Shape:
    """A plan's parts that depend only on the request's shape — (attribution, provider, model, batch, priority)
    — while its windows and rates hold: lines, keys, rates. `quiet` says whether every line has a first threshold
    above zero (an optimistic reservation within `limits` can then stand for the decision); `loud` remembers that
    such a reservation was refused, so the shape's calls go straight to the full assessment until it is rebuilt."""

    __slots__ = (
        "keys",
        "limits",
        "lines",
        "loud",
        "quiet",
        "quiet_parts",
        "rates",
        "sessions",
        "valid_from",
        "valid_until",
    )

    def __init__(
        self,
        valid_from: float,
        valid_until: float,
        lines: tuple[PlanLine, ...],
        keys: tuple[str, ...],
        rates: Rates,
        sessions: bool,
    ) -> None:
        self.valid_from, self.valid_until = valid_from, valid_until
        self.lines, self.keys, self.rates = lines, keys, rates
        self.sessions = sessions  # lines with a session window: their expiry follows each call
        self.quiet = all(line.quiet != (0, 0, 0) for line in lines)
        self.limits = tuple(below_first_threshold(line) for line in lines)  # the optimistic reservation's limits
        # (budget, keys, limits, expires_at) per line of the optimistic reservation; None with session lines,
        # whose expiry follows each call
        self.quiet_parts = (
            None
            if sessions
            else tuple(
                (line.instance, line.keys, limits, line.window.expires_at)
                for line, limits in zip(lines, self.limits, strict=True)
            )
        )
        self.loud = False


@dataclass(slots=True)
class Plan:
    """The budgets one call falls under at `now`. Built on every call, so not frozen (a frozen dataclass
    costs several times as much to build): treat it as read-only."""

    request: CallRequest
    lines: tuple[PlanLine, ...]
    now: float
    sheet: PriceSheet
    max_tokens: int  # the caller's cap or the policy default
    keys: tuple[str, ...]
    rates: Rates | None = None  # the sheet's worst-case rates (computed from `sheet` when not given)
    shape: Shape | None = field(default=None, compare=False, repr=False)  # the engine's cached part of this plan

    def worst_case(
        self, rates: Rates | None = None, *, input_tokens: int | None = None, max_tokens: int | None = None
    ) -> Amounts:
        """What to reserve for all `calls`: input at the highest input price that can apply (cache writes only
        when the request may write cache) plus the full output cap at the highest output price, rounded up to
        the nano-dollar; tokens and requests likewise."""
        request = self.request
        rates = rates or self.rates or Rates.of(self.sheet)
        tokens_in = request.input_tokens if input_tokens is None else input_tokens
        out = self.max_tokens if max_tokens is None else max_tokens
        calls = request.calls
        scaled = calls * (rates.input_cost(request, tokens_in) + out * rates.output)
        return Amounts(-(-scaled // RATE_SCALE), calls * (tokens_in + out), calls)


def below_first_threshold(line: PlanLine) -> Limits:
    """Limits under which a reservation on `line` is granted only if the budget stays below its first threshold
    with the amount added (and within its cap): per meter min(cap, quiet - 1). A granted reservation thus proves
    that no threshold was reached before the call and that the amount fits: what `decide` would allow unchanged.
    (A call that would cross the threshold is refused here and decided in full.)"""
    qn, qt, qr = line.quiet
    cap = line.cap
    if qn == qt == qr == UNLIMITED:
        return cap
    return Limits(_lower(cap.nanos, qn), _lower(cap.tokens, qt), _lower(cap.requests, qr))


def _lower(cap: int | None, quiet: int) -> int | None:
    if quiet >= UNLIMITED:
        return cap
    return quiet - 1 if cap is None or quiet - 1 < cap else cap


def quiet_levels(budget: Budget) -> tuple[int, int, int]:
    """Per meter, the least use at which any threshold of `budget` is reached (`at` × limit, rounded up);
    UNLIMITED where no threshold can be reached on that meter."""
    if any(t.at <= 0 for t in budget.thresholds):
        return (0, 0, 0)
    levels = []
    for limit in (budget.limits.nanos, budget.limits.tokens, budget.limits.requests):
        if not limit or not budget.thresholds:
            levels.append(UNLIMITED)
            continue
        lowest = min(t.at for t in budget.thresholds)
        levels.append(int((lowest * limit).to_integral_value(rounding=ROUND_CEILING)))
    return (levels[0], levels[1], levels[2])


def scope_values(budget: Budget, attribution: Attribution) -> tuple[tuple[str, str], ...] | None:
    """The per-value part of the budget instance this attribution falls in; None when the budget does not apply."""
    values: list[tuple[str, str]] = []
    for dim, wanted in budget.scope:
        have = getattr(attribution, dim)
        if have is None:
            return None
        if wanted == EACH:
            values.append((dim, have))
        elif isinstance(wanted, frozenset):
            if have not in wanted:
                return None
        elif have != wanted:
            return None
    return tuple(values)


def instance_scope(budget: Budget, values: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """A budget instance's scope as a person reads it: each dimension with its value, the instance's own value
    for a per-value dimension, or the values joined by commas for "any of"."""
    per_value = dict(values)
    return tuple(
        (dim, per_value.get(dim) or (",".join(sorted(value)) if isinstance(value, frozenset) else value))
        for dim, value in budget.scope
    )


def instance_stem(budget: Budget, values: tuple[tuple[str, str], ...]) -> str:
    """`b:<budget>|<dim>=<value>…`; values are quoted so `|` and `=` in them cannot fake another key."""
    parts = "".join(f"|{dim}={quote(value, safe='')}" for dim, value in values)
    return f"b:{budget.name}{parts}"


def capped(limits: Limits, share: Decimal) -> Limits:
    """The limits less a reserved share (rounded down: background work never gets the reserved part)."""

    def cut(value: int | None) -> int | None:
        return None if value is None else int(Decimal(value) * (1 - share))

    return Limits(cut(limits.nanos), cut(limits.tokens), cut(limits.requests))
