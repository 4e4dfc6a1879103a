"""The engine's port to a budget store: what the engine asks a store to hold and what a store answers.

The engine plans `ReserveLine`s (one per budget a call must fit in) and reads `Counter`s; a store grants a
`Reservation` or answers a `Refusal`, and says how a settle landed (`SettleOutcome`). The types live here, with
the engine, so the engine depends on nothing below it; `fiscus.stores` implements the port. `Amounts` and
`Limits` (the meters, shared with the policy) are re-exported for the stores' convenience.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fiscus.meters import Amounts, Limits

# Immutable by convention, not frozen: see `fiscus.meters`.


@dataclass(slots=True, unsafe_hash=True)
class ReserveLine:
    """One budget a request must fit in. `expires_at` (epoch s) lets a store drop the counter after its window.
    Treat as immutable."""

    budget: str
    keys: tuple[str, ...]
    limits: Limits
    amount: Amounts
    expires_at: float | None = None


@dataclass(slots=True, unsafe_hash=True)
class Reservation:
    """A granted reservation. Hold it to settle, renew or release; it is plain data (JSON-safe fields). Treat as
    immutable."""

    id: str
    lines: tuple[ReserveLine, ...]
    lease_expires_at: float


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a reservation was refused: the first line that did not fit and its usage at that moment."""

    budget: str
    used: Amounts
    limits: Limits


@dataclass(slots=True, unsafe_hash=True)
class Counter:
    """Spent and reserved on one counter key. Treat as immutable."""

    spent: Amounts = field(default_factory=Amounts)
    reserved: Amounts = field(default_factory=Amounts)

    @property
    def used(self) -> Amounts:
        return self.spent + self.reserved


class SettleOutcome:
    SETTLED = "settled"  # reservation was live: reserved released, actual spend added
    LATE = "late"  # lease had expired (reserved already returned): actual spend added all the same
    DUPLICATE = "duplicate"  # this reservation id was settled before: nothing changed


__all__ = ["Amounts", "Counter", "Limits", "Refusal", "Reservation", "ReserveLine", "SettleOutcome"]
