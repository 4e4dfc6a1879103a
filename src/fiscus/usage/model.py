"""`Usage`: the tokens one call consumed, in one convention whatever the provider reported."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal


@dataclass(slots=True, unsafe_hash=True)
class Usage:
    """Token counts of one call, normalised. Immutable by convention (derive a changed one with `replace`): one
    is built per call, and a frozen dataclass costs twice as much to build.

    The input side is split into disjoint parts, so their sum is everything the model read:
    `input_tokens` is uncached input only, cache reads and writes are counted apart.
    `output_tokens` includes `reasoning_tokens` (reasoning is billed as output).
    `estimated` marks counts fiscus had to estimate, e.g. a stream cut off before usage arrived.
    """

    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False

    def __post_init__(self) -> None:
        # One is built per call: the common case (plain non-negative ints) is checked in one expression.
        i, r, w5, w1, o, z = (
            self.input_tokens,
            self.cache_read_tokens,
            self.cache_write_5m_tokens,
            self.cache_write_1h_tokens,
            self.output_tokens,
            self.reasoning_tokens,
        )
        if (
            type(i) is type(r) is type(w5) is type(w1) is type(o) is type(z) is int
            and i >= 0
            and r >= 0
            and w5 >= 0
            and w1 >= 0
            and 0 <= z <= o
        ):
            return
        for name in (
            "input_tokens",
            "cache_read_tokens",
            "cache_write_5m_tokens",
            "cache_write_1h_tokens",
            "output_tokens",
            "reasoning_tokens",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"Usage.{name} must be a non-negative integer, got {value!r}")
        if self.reasoning_tokens > self.output_tokens:
            raise ValueError("Usage.reasoning_tokens is part of output_tokens and cannot exceed it")

    @property
    def cache_write_tokens(self) -> int:
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    @property
    def total_input_tokens(self) -> int:
        """Every input token the model read: uncached, cache reads and cache writes."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def total_tokens(self) -> int:
        return self.total_input_tokens + self.output_tokens

    @property
    def cache_hit_ratio(self) -> Decimal:
        """Share of the input served from cache, 0 when there was no input."""
        total = self.total_input_tokens
        if total == 0:
            return Decimal(0)
        return Decimal(self.cache_read_tokens) / Decimal(total)

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_5m_tokens=self.cache_write_5m_tokens + other.cache_write_5m_tokens,
            cache_write_1h_tokens=self.cache_write_1h_tokens + other.cache_write_1h_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            estimated=self.estimated or other.estimated,
        )

    def as_estimated(self) -> Usage:
        return replace(self, estimated=True)

    def to_dict(self) -> dict[str, int | bool]:
        return {
            "input_tokens": self.input_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_5m_tokens": self.cache_write_5m_tokens,
            "cache_write_1h_tokens": self.cache_write_1h_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "estimated": self.estimated,
        }

    @classmethod
    def from_dict(cls, data: dict[str, int | bool]) -> Usage:
        return cls(
            input_tokens=int(data.get("input_tokens", 0)),
            cache_read_tokens=int(data.get("cache_read_tokens", 0)),
            cache_write_5m_tokens=int(data.get("cache_write_5m_tokens", 0)),
            cache_write_1h_tokens=int(data.get("cache_write_1h_tokens", 0)),
            output_tokens=int(data.get("output_tokens", 0)),
            reasoning_tokens=int(data.get("reasoning_tokens", 0)),
            estimated=bool(data.get("estimated", False)),
        )
