"""Money in budget counters: integer nano-dollars, so every store (Redis Lua included) adds exactly.

Costs are `Decimal` everywhere else. A budget counts a cost rounded *up* to the next nano-dollar, so
budgets never undercount; the ledger keeps the exact `Decimal`.
"""

from __future__ import annotations

import math
from decimal import Decimal

NANOS_PER_USD = 1_000_000_000
_NANO = Decimal(1) / Decimal(NANOS_PER_USD)


def to_nanos(usd: Decimal) -> int:
    """USD → nano-dollars, rounded up (`Decimal.__ceil__` rounds exactly; it runs on every settle)."""
    return math.ceil(usd * NANOS_PER_USD)


def from_nanos(nanos: int) -> Decimal:
    return (Decimal(nanos) * _NANO).normalize() if nanos else Decimal(0)
