"""Usage: one normalised type, and a reader per provider wire format (whole bodies and streams)."""

from fiscus.usage.model import Usage

__all__ = ["Usage"]
