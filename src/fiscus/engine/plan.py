"""`Plan`: the budgets a call falls under, their window instances and counter keys, and its worst case."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from urllib.parse import quote

from fiscus.attribution import Attribution
from fiscus.engine.request import CallRequest
from fiscus.engine.windows import WindowInstance
from fiscus.policy.types import EACH, Budget
from fiscus.pricing.sheet import PriceSheet
from fiscus.stores.base import Amounts, Limits

NANOS_PER_MTOK_USD = Decimal(1000)  # USD per million tokens → nano-dollars per token


@dataclass(frozen=True, slots=True)
class Rates:
    """A sheet's worst-case prices in nano-dollars per token (any tier, cache writes included), computed once."""

    sheet: PriceSheet
    input_nanos: Decimal
    output_nanos: Decimal

    @classmethod
    def of(cls, sheet: PriceSheet) -> Rates:
        return cls(sheet, sheet.max_input_mtok * NANOS_PER_MTOK_USD, sheet.max_output_mtok * NANOS_PER_MTOK_USD)


@dataclass(frozen=True, slots=True)
class PlanLine:
    """One applicable budget instance: `instance` is its key stem, `keys` its live counter keys (keys[0]
    current), `cap` the limit the store enforces for this request (less the critical reserve for background)."""

    budget: Budget
    instance: str
    keys: tuple[str, ...]
    window: WindowInstance
    cap: Limits
    values: tuple[tuple[str, str], ...] = ()  # the per-value scope this instance is for


@dataclass(frozen=True, slots=True)
class Plan:
    request: CallRequest
    lines: tuple[PlanLine, ...]
    now: float
    sheet: PriceSheet
    max_tokens: int  # the caller's cap or the policy default
    keys: tuple[str, ...]
    rates: Rates | None = None  # the sheet's worst-case rates (computed from `sheet` when not given)

    def worst_case(
        self, rates: Rates | None = None, *, input_tokens: int | None = None, max_tokens: int | None = None
    ) -> Amounts:
        """What to reserve for all `calls`: input at the highest input price that can apply plus the full
        output cap at the highest output price; tokens and requests likewise."""
        request = self.request
        rates = rates or self.rates or Rates.of(self.sheet)
        tokens_in = request.input_tokens if input_tokens is None else input_tokens
        out = self.max_tokens if max_tokens is None else max_tokens
        per_call = tokens_in * rates.input_nanos + out * rates.output_nanos
        nanos = int((per_call * request.calls).to_integral_value(rounding=ROUND_CEILING))
        return Amounts(nanos=nanos, tokens=request.calls * (tokens_in + out), requests=request.calls)


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


def instance_stem(budget: Budget, values: tuple[tuple[str, str], ...]) -> str:
    """`b:<budget>|<dim>=<value>…`; values are quoted so `|` and `=` in them cannot fake another key."""
    parts = "".join(f"|{dim}={quote(value, safe='')}" for dim, value in values)
    return f"b:{budget.name}{parts}"


def capped(limits: Limits, share: Decimal) -> Limits:
    """The limits less a reserved share (rounded down: background work never gets the reserved part)."""

    def cut(value: int | None) -> int | None:
        return None if value is None else int(Decimal(value) * (1 - share))

    return Limits(cut(limits.nanos), cut(limits.tokens), cut(limits.requests))
