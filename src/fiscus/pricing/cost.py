"""`Cost`: what one call cost, in USD as `Decimal`, broken into the parts providers bill separately."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(slots=True, unsafe_hash=True)  # immutable by convention: a third cheaper to build than frozen
class Cost:
    """Cost of one call in USD. Parts are disjoint; `output` includes reasoning; a part's audio, image or video
    tokens are in it at their own rates. `tools` is the fees for server-side tools (web searches, ...).

    `fallback_price` is set when the model was unknown and a configured fallback price was used, so the
    figure is an estimate that reports can flag rather than a silent guess. `provider_reported` is set when
    the total is the provider's own figure for the call (OpenRouter's `usage.cost`), split over the parts in
    the proportions of the catalogue's prices.
    """

    input: Decimal = ZERO
    cache_read: Decimal = ZERO
    cache_write_5m: Decimal = ZERO
    cache_write_1h: Decimal = ZERO
    output: Decimal = ZERO
    fallback_price: bool = False
    tools: Decimal = ZERO
    provider_reported: bool = False

    @property
    def cache_write(self) -> Decimal:
        return self.cache_write_5m + self.cache_write_1h

    @property
    def total(self) -> Decimal:
        return self.input + self.cache_read + self.cache_write_5m + self.cache_write_1h + self.output + self.tools

    def __add__(self, other: Cost) -> Cost:
        if not isinstance(other, Cost):
            return NotImplemented
        return Cost(
            input=self.input + other.input,
            cache_read=self.cache_read + other.cache_read,
            cache_write_5m=self.cache_write_5m + other.cache_write_5m,
            cache_write_1h=self.cache_write_1h + other.cache_write_1h,
            output=self.output + other.output,
            fallback_price=self.fallback_price or other.fallback_price,
            tools=self.tools + other.tools,
            provider_reported=self.provider_reported or other.provider_reported,
        )

    def __mul__(self, calls: int) -> Cost:
        """The cost of `calls` identical calls."""
        if not isinstance(calls, int) or isinstance(calls, bool):
            return NotImplemented
        return Cost(
            input=self.input * calls,
            cache_read=self.cache_read * calls,
            cache_write_5m=self.cache_write_5m * calls,
            cache_write_1h=self.cache_write_1h * calls,
            output=self.output * calls,
            fallback_price=self.fallback_price,
            tools=self.tools * calls,
            provider_reported=self.provider_reported,
        )

    def to_dict(self) -> dict[str, str | bool]:
        """Decimal strings, so JSON keeps every digit."""
        return {
            "input_usd": _s(self.input),
            "cache_read_usd": _s(self.cache_read),
            "cache_write_5m_usd": _s(self.cache_write_5m),
            "cache_write_1h_usd": _s(self.cache_write_1h),
            "output_usd": _s(self.output),
            "tools_usd": _s(self.tools),
            "total_usd": _s(self.total),
            "fallback_price": self.fallback_price,
            "provider_reported": self.provider_reported,
        }

    @classmethod
    def from_dict(cls, data: dict[str, str | bool]) -> Cost:
        return cls(
            input=_d(data.get("input_usd", "0")),
            cache_read=_d(data.get("cache_read_usd", "0")),
            cache_write_5m=_d(data.get("cache_write_5m_usd", "0")),
            cache_write_1h=_d(data.get("cache_write_1h_usd", "0")),
            output=_d(data.get("output_usd", "0")),
            fallback_price=bool(data.get("fallback_price", False)),
            tools=_d(data.get("tools_usd", "0")),
            provider_reported=bool(data.get("provider_reported", False)),
        )


def _s(value: Decimal) -> str:
    """A plain decimal string without exponent or trailing zeros ("0.015", "150", "0")."""
    if not value:  # most parts of most calls (cache, tools): no normalize and format
        return "0"
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def _d(value: object) -> Decimal:
    """`to_dict`'s strings read back; "0" (most parts) is the shared zero, the same value as Decimal("0")."""
    return ZERO if value == "0" else Decimal(str(value))


def usd(value: Decimal) -> str:
    """Money as a user reads it: $ and at least two decimals, more where they matter (to 1e-6)."""
    q = value.quantize(Decimal("0.000001"))
    text = format(q.normalize(), "f")
    if "." not in text:
        text += ".00"
    elif len(text.split(".")[1]) < 2:
        text += "0"
    return f"${text}"
