"""What a call would have cost ungoverned, and the saving each lever made, recorded on its `CostEvent`.

Ungoverned means the call as the caller asked it: the requested model, no cache placement, no trimming, no
summary, no cache hit (every input token at the plain input price), the same output. The levers are taken off
one at a time, in this order, so that their savings add up exactly to ungoverned − actual:

    ungoverned ─context─► without what the window cut ─summary─► without what the summary replaced
               ─route─► on the served model ─cache─► as billed (cache reads and writes, the write premium too)

A lever that cost more than it saved shows as a negative saving (a cache write never read back; the summary
call itself, recorded on its own event with an ungoverned cost of zero). Refused or partial work is never a
saving: such an event has no ungoverned cost at all, and reports count it apart. Nor is work a budget degraded
(a smaller model or a compressed context because a budget neared its end: `Decision.degraded`): not equal work,
so it records no ungoverned cost either and is tagged `degraded=budget`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from fiscus.pricing.cost import ZERO
from fiscus.pricing.sheet import PriceSheet
from fiscus.usage.model import Usage

LEVERS = ("cache", "route", "context", "summary", "response_cache", "batch")


@dataclass(slots=True)
class Savings:
    """USD saved per lever on one call (or summed over many). Mutable only while a sum is built."""

    cache: Decimal = ZERO
    route: Decimal = ZERO
    context: Decimal = ZERO
    summary: Decimal = ZERO
    response_cache: Decimal = ZERO
    batch: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.cache + self.route + self.context + self.summary + self.response_cache + self.batch

    def by_lever(self) -> dict[str, Decimal]:
        return {lever: getattr(self, lever) for lever in LEVERS}

    def add(self, other: Savings) -> None:
        # Spelled out: a report sums thousands of rollup rows, and dataclasses.fields() per row was most of it
        self.cache += other.cache
        self.route += other.route
        self.context += other.context
        self.summary += other.summary
        self.response_cache += other.response_cache
        self.batch += other.batch

    def to_dict(self) -> dict[str, str]:
        return {lever: str(value) for lever, value in self.by_lever().items()}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Savings:
        return cls(**{lever: Decimal(data[lever]) for lever in LEVERS if lever in data})


@dataclass(frozen=True, slots=True)
class Shaped:
    """What a door did to a call's input before sending it, in input tokens (the budget's estimate)."""

    context_tokens: int = 0  # removed by the context window
    summary_tokens: int = 0  # older turns replaced by their summary, net of the summary's own length
    summary_call: bool = False  # the call that wrote a summary: a cost of the summary lever, no work of its own


def ungoverned(
    usage: Usage, actual: Decimal, *, asked: PriceSheet, served: PriceSheet, shaped: Shaped | None = None
) -> tuple[Decimal, Savings]:
    """(ungoverned cost, savings by lever) of a call that used `usage` and cost `actual` on `served`'s prices,
    asked for on `asked`'s (the same sheet when no route or downgrade moved it)."""
    shaped = shaped or _NOTHING
    if shaped.summary_call:  # ungoverned, this call would never have been made
        return ZERO, Savings(summary=-actual)
    sent = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_5m_tokens + usage.cache_write_1h_tokens
    if served is asked and sent == usage.input_tokens and not shaped.context_tokens and not shaped.summary_tokens:
        # Nothing cached, moved or trimmed: ungoverned is what it cost (most calls; pricing it again is the cost)
        zero = actual - actual
        return actual, Savings(cache=zero, route=zero, context=zero, summary=zero)

    def plain(sheet: PriceSheet, tokens: int) -> Decimal:
        """The call on `sheet` with `tokens` of input, none of it cached (output and tool fees as they were)."""
        uncached = replace(
            usage, input_tokens=tokens, cache_read_tokens=0, cache_write_5m_tokens=0, cache_write_1h_tokens=0
        )
        return sheet.cost(uncached).total

    whole = plain(asked, sent + shaped.context_tokens + shaped.summary_tokens)
    windowed = plain(asked, sent + shaped.summary_tokens) if shaped.context_tokens else whole
    summarised = plain(asked, sent) if shaped.summary_tokens else windowed
    routed = plain(served, sent) if served is not asked else summarised
    return whole, Savings(
        cache=routed - actual, route=summarised - routed, context=whole - windowed, summary=windowed - summarised
    )


def answered_from_cache(usage: Usage, *, asked: PriceSheet) -> tuple[Decimal, Savings]:
    """(ungoverned cost, savings) of a call the exact response cache answered: ungoverned, it would have been
    made again as asked, every input token at the plain input price (`usage` is what the cached answer was
    billed for); the whole of it is the response cache's saving (the hit itself costs nothing)."""
    sent = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_5m_tokens + usage.cache_write_1h_tokens
    plain = replace(usage, input_tokens=sent, cache_read_tokens=0, cache_write_5m_tokens=0, cache_write_1h_tokens=0)
    whole = asked.cost(plain).total
    return whole, Savings(response_cache=whole)


_NOTHING = Shaped()
