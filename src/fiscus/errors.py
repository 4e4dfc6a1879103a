"""The errors fiscus raises on purpose. Each carries a message fit to show a user as one line."""

from __future__ import annotations


class FiscusError(Exception):
    """Base of every error fiscus raises deliberately; its message is one readable line."""


class ConfigError(FiscusError):
    """A configuration or policy file is wrong; the message names the file, the field and the fault."""


class PricingError(FiscusError):
    """A call cannot be priced: unknown model, no price for a token type, bad override."""


class UnknownModelError(PricingError):
    """The model is in neither the catalogue nor the local overrides, and no fallback price is configured."""


class UsageFormatError(FiscusError):
    """A provider body or stream is not in a format fiscus can read."""


class StoreError(FiscusError):
    """A budget store or ledger backend failed or cannot be reached."""


class StoreLost(StoreError):
    """The budget store's state is gone (its marker is missing: an emptied Redis, a replaced SQLite file, a restarted
    memory store). Nothing was reserved; the governor rebuilds the counters from the ledger or answers per
    `store.on_store_loss`."""


class StoreUnreachable(StoreError):
    """The budget store cannot be reached (connection refused, timed out); nothing is known of its state."""


class StoreUnavailable(StoreError):
    """The governor refuses to admit calls for now: the budget store lost its state (rebuilding, or waiting for an
    operator under `fail_closed`) or is unreachable. `retry_after` is how many seconds to wait before trying again."""

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after
