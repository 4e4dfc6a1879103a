"""Typed errors the SDK raises on purpose; each is a `FiscusError` with a one-line message."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fiscus.errors import FiscusError


class BudgetBlocked(FiscusError):
    """A budget blocks this call. `retry_at` is when it may succeed (a window's reset), if known."""

    def __init__(self, message: str, *, retry_at: datetime | None = None, reasons: tuple[Any, ...] = ()) -> None:
        super().__init__(message)
        self.retry_at = retry_at
        self.reasons = reasons


class BudgetExhausted(FiscusError):
    """The budget is exhausted and the caller asked to be told by an exception (`on_exhausted="raise"`).
    `state` is the session's state at that moment (cost, steps, why it ended), JSON-safe."""

    def __init__(self, message: str, *, state: dict[str, Any] | None = None, retry_at: datetime | None = None):
        super().__init__(message)
        self.state = state or {}
        self.retry_at = retry_at


class LoopDetectedError(FiscusError):
    """A loop guard fired with action `raise`. `kind` and `evidence` say what it saw."""

    def __init__(self, message: str, *, kind: str, evidence: dict[str, Any], state: dict[str, Any] | None = None):
        super().__init__(message)
        self.kind = kind
        self.evidence = evidence
        self.state = state or {}
