"""`PriceSheet`: the rates in force for one model at one moment, and the arithmetic that turns usage into cost."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal

from fiscus.errors import PricingError
from fiscus.pricing.cost import Cost
from fiscus.usage.model import Usage, UsageDetail

MTOK = Decimal(1_000_000)
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Rate:
    """USD per million tokens, with optional long-context tiers.

    A tier is `(start, price)`: once the call's total input exceeds `start`, *every* token of this kind is
    billed at `price` (how Anthropic and Google bill their long-context tiers).
    """

    base: Decimal
    tiers: tuple[tuple[int, Decimal], ...] = ()

    def at(self, total_input_tokens: int) -> Decimal:
        if not self.tiers:
            return self.base
        for start, price in reversed(self.tiers):
            if total_input_tokens > start:
                return price
        return self.base

    @property
    def highest(self) -> Decimal:
        return max([self.base, *(price for _, price in self.tiers)])

    def scaled(self, factor: Decimal) -> Rate:
        return Rate(self.base * factor, tuple((start, price * factor) for start, price in self.tiers))


@dataclass(frozen=True, slots=True)
class PriceSheet:
    """Rates for one model: what each kind of token costs. A missing cache rate falls back as providers do
    (cache reads and writes billed as plain input; 1 h writes at the 5 min write rate)."""

    provider: str
    model: str
    input: Rate
    output: Rate
    cache_read: Rate | None = None
    cache_write_5m: Rate | None = None
    cache_write_1h: Rate | None = None
    fallback_price: bool = False
    source: str = "genai-prices"
    notes: tuple[str, ...] = field(default=())
    # (part, modality, rate): audio, image or video tokens of a part billed at their own rate.
    modality_rates: tuple[tuple[str, str, Rate], ...] = ()
    # (unit, price, per): server-tool fees, e.g. ("web_searches", 10, 1000) for $10 per 1,000 searches.
    tool_rates: tuple[tuple[str, Decimal, int], ...] = ()
    context_window: int | None = None  # the most input tokens a call can send, when the catalogue says
    # The sheet of another model of the same provider, moment and batch: for iterations billed at their own model.
    other_model: Callable[[str], PriceSheet] | None = field(default=None, compare=False, repr=False)

    @property
    def cache_read_rate(self) -> Rate:
        return self.cache_read or self.input

    @property
    def cache_write_5m_rate(self) -> Rate:
        return self.cache_write_5m or self.input

    @property
    def cache_write_1h_rate(self) -> Rate:
        return self.cache_write_1h or self.cache_write_5m_rate

    def cost(self, usage: Usage) -> Cost:
        if usage.detail is not None:
            return self._detailed_cost(usage, usage.detail)
        # Runs on every settle: parts without tokens are skipped before any rate is looked up.
        fresh, read, write_5m, write_1h = (
            usage.input_tokens,
            usage.cache_read_tokens,
            usage.cache_write_5m_tokens,
            usage.cache_write_1h_tokens,
        )
        total_in = fresh + read + write_5m + write_1h
        return Cost(
            _part(self.input, fresh, total_in) if fresh else _ZERO,
            _part(self.cache_read_rate, read, total_in) if read else _ZERO,
            _part(self.cache_write_5m_rate, write_5m, total_in) if write_5m else _ZERO,
            _part(self.cache_write_1h_rate, write_1h, total_in) if write_1h else _ZERO,
            _part(self.output, usage.output_tokens, total_in) if usage.output_tokens else _ZERO,
            self.fallback_price,
        )

    def _detailed_cost(self, usage: Usage, detail: UsageDetail) -> Cost:
        if detail.iterations:
            cost = Cost(fallback_price=self.fallback_price)
            for iteration in detail.iterations:
                model = iteration.model
                sheet = self if model is None or model == self.model else self.sheet_of(model)
                cost += sheet.cost(iteration.usage)
        else:
            cost = self._token_cost(usage, detail)
        tools = self.tools_cost(detail.server_tools)
        if tools:
            cost = replace(cost, tools=cost.tools + tools)
        if detail.reported_cost is not None:
            return reported_cost(cost, detail.reported_cost)
        return cost

    def sheet_of(self, model: str) -> PriceSheet:
        if self.other_model is None:
            raise PricingError(f"cannot price a part of the call billed at {model!r}: no catalogue for other models")
        return self.other_model(model)

    def _token_cost(self, usage: Usage, detail: UsageDetail) -> Cost:
        total_in = usage.total_input_tokens
        rates = {(part, modality): rate for part, modality, rate in self.modality_rates}

        def part(name: str, base: Rate, tokens: int) -> Decimal:
            amount = _ZERO
            for modality, count in detail.modality_tokens(name).items():
                rate = rates.get((name, modality))
                if rate is not None:
                    count = min(count, tokens)
                    amount += _part(rate, count, total_in)
                    tokens -= count
            return amount + (_part(base, tokens, total_in) if tokens else _ZERO)

        return Cost(
            part("input", self.input, usage.input_tokens),
            part("cache_read", self.cache_read_rate, usage.cache_read_tokens),
            _part(self.cache_write_5m_rate, usage.cache_write_5m_tokens, total_in),
            _part(self.cache_write_1h_rate, usage.cache_write_1h_tokens, total_in),
            part("output", self.output, usage.output_tokens),
            self.fallback_price,
        )

    def tools_cost(self, server_tools: tuple[tuple[str, int], ...]) -> Decimal:
        """Fees for server-side tool use; a tool the catalogue has no fee for costs nothing beyond its tokens."""
        if not server_tools:
            return _ZERO
        fees = {unit: (price, per) for unit, price, per in self.tool_rates}
        total = _ZERO
        for unit, count in server_tools:
            if unit in fees:
                price, per = fees[unit]
                total += price * count / per
        return total

    @property
    def max_input_mtok(self) -> Decimal:
        """The highest price an input token of this model can cost (any tier, cache writes included)."""
        return max(
            self.input.highest,
            self.cache_write_5m_rate.highest,
            self.cache_write_1h_rate.highest,
        )

    @property
    def max_input_mtok_no_cache_write(self) -> Decimal:
        """The highest price an input token can cost in a call that writes no cache (any tier): plain input, or a
        cache read (never dearer than input in any catalogue, included so the bound holds whatever the data)."""
        return max(self.input.highest, self.cache_read_rate.highest)

    @property
    def max_output_mtok(self) -> Decimal:
        return self.output.highest

    def worst_case(self, input_tokens: int, max_output_tokens: int, *, cache_writes: bool = True) -> Decimal:
        """An upper bound on the cost of a call with this many input tokens and this output cap (one that writes
        no cache is bounded by the plain input price)."""
        per_input = self.max_input_mtok if cache_writes else self.max_input_mtok_no_cache_write
        return (Decimal(input_tokens) * per_input + Decimal(max_output_tokens) * self.max_output_mtok) / MTOK

    def scaled(self, factor: Decimal, note: str) -> PriceSheet:
        """The same sheet with every rate multiplied, e.g. by 0.8 for a negotiated 20 % discount."""
        return PriceSheet(
            provider=self.provider,
            model=self.model,
            input=self.input.scaled(factor),
            output=self.output.scaled(factor),
            cache_read=self.cache_read.scaled(factor) if self.cache_read else None,
            cache_write_5m=self.cache_write_5m.scaled(factor) if self.cache_write_5m else None,
            cache_write_1h=self.cache_write_1h.scaled(factor) if self.cache_write_1h else None,
            fallback_price=self.fallback_price,
            source=self.source,
            notes=(*self.notes, note),
            modality_rates=tuple((p, m, rate.scaled(factor)) for p, m, rate in self.modality_rates),
            tool_rates=tuple((unit, price * factor, per) for unit, price, per in self.tool_rates),
            context_window=self.context_window,
            other_model=self.other_model,
        )


def _part(rate: Rate, tokens: int, total_input_tokens: int) -> Decimal:
    return (rate.at(total_input_tokens) if rate.tiers else rate.base) * tokens / MTOK


def reported_cost(cost: Cost, reported: Decimal) -> Cost:
    """The provider's own total, split over the parts as the catalogue's prices split them (exactly: the largest
    part takes what the others leave)."""
    parts = [cost.input, cost.cache_read, cost.cache_write_5m, cost.cache_write_1h, cost.output, cost.tools]
    total = sum(parts, _ZERO)
    if total <= 0:
        parts = [reported, _ZERO, _ZERO, _ZERO, _ZERO, _ZERO]
    else:
        largest = max(range(len(parts)), key=lambda i: parts[i])
        shares = [p * reported / total for p in parts]
        shares[largest] = reported - sum((s for i, s in enumerate(shares) if i != largest), _ZERO)
        parts = shares
    return Cost(*parts[:5], fallback_price=False, tools=parts[5], provider_reported=True)
