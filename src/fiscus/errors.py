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
