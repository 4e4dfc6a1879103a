"""Budget stores: counters and leased reservations behind one interface (memory, SQLite, Redis)."""

from fiscus.stores.base import (
    Amounts,
    BudgetStore,
    Counter,
    Limits,
    Refusal,
    Reservation,
    ReserveLine,
    SettleOutcome,
)

__all__ = [
    "Amounts",
    "BudgetStore",
    "Counter",
    "Limits",
    "Refusal",
    "Reservation",
    "ReserveLine",
    "SettleOutcome",
]
