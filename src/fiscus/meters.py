"""The three meters every budget counts — USD in nano-dollars (see `fiscus.money`), tokens, requests — as an
amount (`Amounts`) and a limit (`Limits`). Shared by the policy, the engine and the stores."""

from __future__ import annotations

from dataclasses import dataclass

# The types built on every call (Amounts here, ReserveLine, Reservation and Counter in
# `fiscus.engine.ports`) are immutable by convention, not
# frozen: a frozen dataclass pays `object.__setattr__` per field, about three times the cost of building it.
# They stay hashable and compare by value.


@dataclass(slots=True, unsafe_hash=True)
class Amounts:
    """An amount on each meter: USD in nano-dollars (see `fiscus.money`), tokens, requests. Treat as immutable."""

    nanos: int = 0
    tokens: int = 0
    requests: int = 0

    def __add__(self, other: Amounts) -> Amounts:
        return Amounts(self.nanos + other.nanos, self.tokens + other.tokens, self.requests + other.requests)

    def __sub__(self, other: Amounts) -> Amounts:
        return Amounts(self.nanos - other.nanos, self.tokens - other.tokens, self.requests - other.requests)


@dataclass(frozen=True, slots=True)
class Limits:
    """A line's limit on each meter; `None` means that meter is not limited."""

    nanos: int | None = None
    tokens: int | None = None
    requests: int | None = None

    def admits(self, used: Amounts, extra: Amounts) -> bool:
        return all(
            limit is None or used_value + extra_value <= limit
            for limit, used_value, extra_value in (
                (self.nanos, used.nanos, extra.nanos),
                (self.tokens, used.tokens, extra.tokens),
                (self.requests, used.requests, extra.requests),
            )
        )
