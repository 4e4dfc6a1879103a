"""`EventSink`: where the doors hand every settled call's `CostEvent` (and every attached outcome) to be kept.

`fiscus.ledger.LedgerWriter` is the sink in production (queued, batched, durable); tests pass a list-backed fake.
The governor depends on this protocol, not on the ledger package.
"""

from __future__ import annotations

from typing import Protocol

from fiscus.events.cost_event import CostEvent
from fiscus.events.outcome_event import OutcomeRecorded


class EventSink(Protocol):
    def submit(self, event: CostEvent | OutcomeRecorded) -> None:
        """Take one event; must not wait on a database."""

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far is stored; False on timeout."""

    def close(self, timeout: float | None = None) -> None:
        """Store what is queued, then stop."""
