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
SCALE_ONE = 10**6  # estimate factors are integers × SCALE_ONE (1.2 → 1_200_000)


def scaled_rate(usd_per_mtok: Decimal) -> int:
    """USD per million tokens as integer nano-dollars per token × RATE_SCALE, rounded up (a worst case never
    undercounts)."""
    return int((usd_per_mtok * _PER_MTOK).to_integral_value(rounding=ROUND_CEILING))


@dataclass(frozen=True, slots=True)
class TierRates:
    """One price tier as integers (nano-dollars per token × RATE_SCALE): it applies once the call's total input
    exceeds `above` (-1: the base tier). `input` is a plain input token (or a cache read, never dearer in any
    catalogue: the larger of the two, so the bound holds whatever the data)."""

    above: int
    input: int
    write_5m: int
    write_1h: int
    output: int


@dataclass(frozen=True, slots=True)
class Rates:
    """A sheet's prices as integers, computed once per sheet: one `TierRates` per long-context tier (ascending),
    and the model's context window (the most input a call can send), when the catalogue knows it."""

    sheet: PriceSheet
    tiers: tuple[TierRates, ...]
    context_window: int | None = None

    @classmethod
    def of(cls, sheet: PriceSheet) -> Rates:
        rates = (sheet.input, sheet.cache_read_rate, sheet.cache_write_5m_rate, sheet.cache_write_1h_rate)
        starts = sorted({start for rate in (*rates, sheet.output) for start, _ in rate.tiers})
        tiers = []
        for above in (-1, *starts):
            total = above + 1  # the least total input in this tier
            plain, read, write_5m, write_1h = (rate.at(total) for rate in rates)
            tiers.append(
                TierRates(
                    above,
                    scaled_rate(max(plain, read)),
                    scaled_rate(write_5m),
                    scaled_rate(write_1h),
                    scaled_rate(sheet.output.at(total)),
                )
            )
        window = sheet.context_window
        if window is not None and starts and starts[-1] >= window:
            window = None  # a tier above the stated window: the model takes more (a long-context option)
        return cls(sheet, tuple(tiers), window)

    def at(self, tokens_in: int) -> TierRates:
        """The tier a call with `tokens_in` input tokens in all is billed at."""
        tiers = self.tiers
        if len(tiers) == 1:
            return tiers[0]
        for tier in reversed(tiers):
            if tokens_in > tier.above:
                return tier
        return tiers[0]

    @property
    def input(self) -> int:
        """The base tier's plain input rate."""
        return self.tiers[0].input

    @property
    def output(self) -> int:
        """The base tier's output rate."""
        return self.tiers[0].output


@dataclass(frozen=True, slots=True)
class InputCase:
    """The input a reservation covers: `tokens` in all, of which `writes` may be cache writes and `writes_1h` of
    those at the 1 h TTL. `cost(rates)` prices them at the tier `tokens` falls in; `output` is that tier's rate
    for an output token (scaled integers throughout)."""

    tokens: int
    writes: int = 0
    writes_1h: int = 0

    def cost(self, rates: Rates) -> tuple[int, int]:
        tier = rates.at(self.tokens)
        writes, writes_1h = self.writes, self.writes_1h
        scaled = (self.tokens - writes) * tier.input + (writes - writes_1h) * tier.write_5m + writes_1h * tier.write_1h
        return scaled, tier.output


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
    hold_keys: tuple[str, ...] = ()  # the worst-case counters beside `keys` (`hold_key`)


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
        # (budget, keys, limits, expires_at, hold keys, cap) per line of the optimistic reservation; None with
        # session lines, whose expiry follows each call
        self.quiet_parts = (
            None
            if sessions
            else tuple(
                (line.instance, line.keys, limits, line.window.expires_at, line.hold_keys, line.cap)
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

    scale: int = SCALE_ONE  # the input estimate's factor × SCALE_ONE: calibration × (1 + the policy's margin)
    # The request's hard input bound, tightened by what an earlier turn of its conversation billed (the engine's
    # `BilledPrefixes`); None: none known, the scaled estimate stands for it.
    bound: int | None = None
    # The reserve's share of its estimate (× SCALE_ONE, at most 1): settled / estimated cost lately for this
    # shape, times 1 + the margin. The worst case (`hold`) never takes it.
    cost_scale: int = SCALE_ONE

    def estimate_case(
        self,
        rates: Rates | None = None,
        tokens_in: int | None = None,
        scale: int | None = None,
        hard: InputCase | None = None,
    ) -> InputCase:
        """The input the reservation covers: the counted input (or `tokens_in`, a compression target, in the
        same units) times `scale` (the plan's own unless given), cache writes only for the marked prefix at the
        TTL it asks for; never more than the hard case (`hard`, when the caller has it already)."""
        request = self.request
        scale = self.scale if scale is None else scale
        counted = request.input_tokens if tokens_in is None else tokens_in
        if hard is None:
            hard = self.hard_case(rates)
        tokens = min(-(-counted * scale // SCALE_ONE), hard.tokens)
        if not request.cache_writes:
            return InputCase(tokens)
        marked = request.cache_write_tokens
        writes = tokens if marked is None else min(tokens, -(-marked * scale // SCALE_ONE))
        marked_1h = request.cache_write_1h_tokens
        writes_1h = writes if marked_1h is None else min(writes, -(-marked_1h * scale // SCALE_ONE))
        return InputCase(tokens, min(writes, hard.writes), min(writes_1h, hard.writes_1h))

    def hard_case(self, rates: Rates | None = None) -> InputCase:
        """The most input the call can send: the request's hard bound (UTF-8 bytes, or the model's own exact
        count), capped by the model's context window; without a bound, the scaled estimate stands for it."""
        request = self.request
        rates = rates or self.rates or Rates.of(self.sheet)
        bound = self.bound if self.bound is not None else request.hard_input_bound()
        if bound is None:
            bound = -(-request.input_tokens * self.scale // SCALE_ONE)
            marked = request.cache_write_tokens
            marked_1h = request.cache_write_1h_tokens
            write_bound = None if marked is None else -(-marked * self.scale // SCALE_ONE)
            write_1h_bound = None if marked_1h is None else -(-marked_1h * self.scale // SCALE_ONE)
        else:
            marked, marked_1h = request.cache_write_tokens, request.cache_write_1h_tokens
            write_bound, write_1h_bound = request.cache_write_bound, request.cache_write_1h_bound
        window = rates.context_window
        if window is not None and bound > window:
            bound = window
        if not request.cache_writes:
            return InputCase(bound)
        writes = bound if marked is None or write_bound is None else min(bound, write_bound)
        writes_1h = writes if marked_1h is None or write_1h_bound is None else min(writes, write_1h_bound)
        return InputCase(bound, writes, writes_1h)

    def worst_case(
        self, rates: Rates | None = None, *, input_tokens: int | None = None, max_tokens: int | None = None
    ) -> Amounts:
        """What to reserve for all `calls`: the estimated input (`estimate_case`) at its tier's prices plus the
        full output cap at that tier's output price, rounded up to the nano-dollar, times `cost_scale`; tokens
        and requests likewise (unscaled)."""
        rates = rates or self.rates or Rates.of(self.sheet)
        amount = self._amounts(rates, self.estimate_case(rates, input_tokens), max_tokens)
        scale = self.cost_scale
        if scale >= SCALE_ONE:
            return amount
        return Amounts(-(-amount.nanos * scale // SCALE_ONE), amount.tokens, amount.requests)

    def reserve_and_hold(self) -> tuple[Amounts, Amounts]:
        """`worst_case()` and `hold()` at once (the optimistic reservation needs both): the hard case found once."""
        rates = self.rates or Rates.of(self.sheet)
        hard = self.hard_case(rates)
        amount = self._amounts(rates, self.estimate_case(rates, hard=hard), None)
        scale = self.cost_scale
        if scale < SCALE_ONE:
            amount = Amounts(-(-amount.nanos * scale // SCALE_ONE), amount.tokens, amount.requests)
        return amount, self._amounts(rates, hard, None)

    def hold(self, rates: Rates | None = None, *, max_tokens: int | None = None) -> Amounts:
        """What the call can cost at most, whatever the estimate's error: the hard input bound at its tier plus
        the full output cap. Held on the budgets' worst-case counters, which must fit it beside every other
        call in flight."""
        rates = rates or self.rates or Rates.of(self.sheet)
        return self._amounts(rates, self.hard_case(rates), max_tokens)

    def _amounts(self, rates: Rates, case: InputCase, max_tokens: int | None) -> Amounts:
        out = self.max_tokens if max_tokens is None else max_tokens
        calls = self.request.calls
        cost, per_output = case.cost(rates)
        scaled = calls * (cost + out * per_output)
        return Amounts(-(-scaled // RATE_SCALE), calls * (case.tokens + out), calls)


def hold_key(key: str) -> str:
    """The worst-case counter beside a budget counter key (`b:…` → `h:…`): what its calls can cost at most."""
    return "h" + key[1:]


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
