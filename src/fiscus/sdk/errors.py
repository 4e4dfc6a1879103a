"""Typed errors the SDK raises on purpose; each is a `FiscusError` with a one-line message.

Every refusal carries what the gateway's error body carries: a machine-readable `code` (`budget_exhausted`,
`breaker_open`, `loop_detected`, `session_ceiling`), the `message`, and `retry_after` — whole seconds until
asking again may be answered (`retry_at` as a time), None when unknown.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from fiscus.errors import FiscusError
from fiscus.shaping.partial import BREAKER_OPEN, BUDGET_EXHAUSTED, LOOP_DETECTED


def seconds_until(moment: datetime | None, now: datetime | None = None) -> int | None:
    """Whole seconds from now to `moment` (at least 1; the gateway's `retry-after`), None when unknown."""
    if moment is None:
        return None
    delta = (moment - (now or datetime.now(UTC))).total_seconds()
    return max(1, math.ceil(delta))


class Refused(FiscusError):
    """A call fiscus answered without calling a model, by raising. `code`, `message`, `retry_at`, `retry_after`."""

    default_code = BUDGET_EXHAUSTED

    def __init__(self, message: str, *, code: str | None = None, retry_at: datetime | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.retry_at = retry_at
        self.retry_after = seconds_until(retry_at)

    def marker(self) -> dict[str, Any]:
        """The same `fiscus` object a partial answer carries, for logs and error bodies."""
        return {"partial": False, "code": self.code, "message": self.message, "retry_after": self.retry_after}


class BudgetExhausted(Refused):
    """A budget (or a session ceiling) refused the call: raised where the caller asked to be told by an exception
    (`on_exhausted="raise"`) and, as `BudgetBlocked`, where the policy's action is `block`. `state` is the
    session's state at that moment (cost, steps, why it ended), JSON-safe."""

    def __init__(
        self,
        message: str,
        *,
        state: dict[str, Any] | None = None,
        retry_at: datetime | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, code=code, retry_at=retry_at)
        self.state = state or {}


class BudgetBlocked(BudgetExhausted):
    """A budget's action is `block`: the call is refused whatever `on_exhausted` says. `reasons` are the engine's."""

    def __init__(
        self,
        message: str,
        *,
        retry_at: datetime | None = None,
        reasons: tuple[Any, ...] = (),
        state: dict[str, Any] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, state=state, retry_at=retry_at, code=code)
        self.reasons = reasons


class GuardRefused(Refused):
    """A guard refused the call: an open circuit breaker (`breaker_open`, `retry_at` its reopen time) or a loop
    (`loop_detected`), where the policy's action is `block` or the caller asked for exceptions."""

    default_code = BREAKER_OPEN

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retry_at: datetime | None = None,
        state: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code=code, retry_at=retry_at)
        self.state = state or {}


class LoopDetectedError(GuardRefused):
    """A loop guard fired with action `raise`. `kind` and `evidence` say what it saw."""

    default_code = LOOP_DETECTED

    def __init__(self, message: str, *, kind: str, evidence: dict[str, Any], state: dict[str, Any] | None = None):
        super().__init__(message, state=state)
        self.kind = kind
        self.evidence = evidence
