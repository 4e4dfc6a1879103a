"""The cost ledger: every `CostEvent` kept once, durably, and the spend questions reports ask.

Open one by URL: `sqlite:///path/ledger.db`, `sqlite:///:memory:` or `postgresql://user@host/db`.
"""

from fiscus.ledger.base import GROUP_KEYS, Ledger, SpendQuery, SpendRow, UnknownDimensionError
from fiscus.ledger.open import open_ledger
from fiscus.ledger.writer import LedgerWriter

__all__ = ["GROUP_KEYS", "Ledger", "LedgerWriter", "SpendQuery", "SpendRow", "UnknownDimensionError", "open_ledger"]
