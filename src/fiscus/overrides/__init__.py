"""Overrides: an operator's leave for one key (or everyone on one budget) to pass the refusals the policy marks
overridable, until an expiry, for a stated reason. Granted with `fiscus overrides grant` or the admin API, kept
beside the virtual keys (SQLite or PostgreSQL), read by every gateway within seconds, named on the ledger event of
each call they let through, and announced."""

from fiscus.overrides.book import OverrideBook
from fiscus.overrides.model import EVERY_BUDGET, Override, OverrideError, OverrideNotFoundError
from fiscus.overrides.store import OverrideStore, open_override_store

__all__ = [
    "EVERY_BUDGET",
    "Override",
    "OverrideBook",
    "OverrideError",
    "OverrideNotFoundError",
    "OverrideStore",
    "open_override_store",
]
