"""What a call that reaches no model gets, on every SDK path: the policy's action decides, as on the gateway.

- `partial` (a budget's partial tier, `guards.breakers.on_open: partial`, loop action `stop`): an honest partial
  answer — the SDK's own object, a real ending and the `fiscus` marker (code, message, retry_after);
- `block` (a budget's block tier, `on_open: block`, loop action `raise`), or any of them when the caller asked
  for exceptions (`on_exhausted="raise"`): `BudgetBlocked`/`BudgetExhausted`, `GuardRefused`/`LoopDetectedError`,
  each carrying code, message and retry_after;
- an error-rate breaker open because the provider failed: the provider SDK's own 503 exception (an outage).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fiscus.events.cost_event import CallStatus
from fiscus.guards.registry import MODEL_PREFIX
from fiscus.sdk.errors import BudgetExhausted, GuardRefused, LoopDetectedError, seconds_until
from fiscus.sdk.failures import PROVIDER_UNAVAILABLE, unavailable
from fiscus.shaping.partial import BREAKER_OPEN, BUDGET_EXHAUSTED, LOOP_DETECTED, SESSION_CEILING, exhausted_text

if TYPE_CHECKING:
    from fiscus.guards.breaker import CircuitBreaker
    from fiscus.guards.loops import Detection
    from fiscus.sdk.gate import Gate, Short
    from fiscus.sdk.session import Session

ON_BREAKER_OPEN = ("partial", "block")
_STOPPED_CODES = {"ceiling": SESSION_CEILING, "loop": LOOP_DETECTED, "breaker": BREAKER_OPEN}
_GUARD_CODES = (BREAKER_OPEN, LOOP_DETECTED)


def stopped_text(message: str) -> str:
    """The text of a guard's partial answer (the gateway's words for the same refusal)."""
    return f"[fiscus] Stopped before calling a model: {message.rstrip('.')}. This answer is incomplete."


def answer_text(short: Short) -> str:
    return stopped_text(short.message) if short.code in _GUARD_CODES else exhausted_text(short.message)


def _state(session: Session | None) -> dict[str, Any]:
    return session.state() if session is not None else {}


def exhausted(
    gate: Gate,
    message: str,
    model: str,
    session: Session | None,
    *,
    code: str = BUDGET_EXHAUSTED,
    retry_at: datetime | None = None,
) -> Short:
    """A budget's (or session's) partial tier: the partial answer, or `BudgetExhausted` if the caller asked."""
    from fiscus.sdk.gate import Short

    if gate.on_exhausted == "raise":
        error = BudgetExhausted(message, state=_state(session), retry_at=retry_at, code=code)
        return Short(message, model, error, code=code, retry_at=retry_at)
    return Short(message, model, code=code, retry_at=retry_at)


def session_stopped(gate: Gate, session: Session, model: str) -> Short:
    """A call inside a session fiscus already stopped: answered as what stopped it."""
    stopped = next(n for n in session.chain() if n.ended_as is not None)
    code = _STOPPED_CODES.get(stopped.ended_as or "", BUDGET_EXHAUSTED)
    message = f"session {stopped.id} has stopped: {stopped.reason}"
    if code in _GUARD_CODES and gate.on_exhausted == "raise":
        from fiscus.sdk.gate import Short

        return Short(message, model, GuardRefused(message, code=code, state=_state(session)), code=code)
    return exhausted(gate, message, model, session, code=code)


def breaker_open(gate: Gate, breaker: CircuitBreaker, provider: str, model: str, session: Session | None) -> Short:
    from fiscus.sdk.gate import Short

    trip = breaker.last_trip
    reason = trip.message if trip is not None else "circuit breaker open"
    retry_at = datetime.fromtimestamp(trip.reopens_at, UTC) if trip is not None else None
    message = f"{breaker.scope} circuit breaker is open: {reason}"
    if breaker.scope.startswith(MODEL_PREFIX):  # opened by the provider's own failures: an outage
        outage = unavailable(provider, message, seconds_until(retry_at))
        error = outage or GuardRefused(message, code=PROVIDER_UNAVAILABLE, retry_at=retry_at, state=_state(session))
        return Short(message, model, error, status=CallStatus.BLOCKED, code=PROVIDER_UNAVAILABLE, retry_at=retry_at)
    if gate.on_breaker_open == "block" or gate.on_exhausted == "raise":
        error = GuardRefused(message, code=BREAKER_OPEN, retry_at=retry_at, state=_state(session))
        return Short(message, model, error, status=CallStatus.BLOCKED, code=BREAKER_OPEN, retry_at=retry_at)
    return Short(message, model, code=BREAKER_OPEN, retry_at=retry_at)


def loop_stopped(gate: Gate, found: Detection, action: str, owner: Session | None, model: str) -> Short:
    """A loop with action `stop` (partial) or `raise` (`LoopDetectedError`, also for `on_exhausted="raise"`)."""
    from fiscus.sdk.gate import Short

    message = f"stopped by loop detection ({found.kind}): {found.message}"
    if action == "raise" or gate.on_exhausted == "raise":
        error = LoopDetectedError(message, kind=found.kind, evidence=found.evidence, state=_state(owner))
        return Short(message, model, error, status=CallStatus.BLOCKED, code=LOOP_DETECTED)
    return Short(message, model, code=LOOP_DETECTED)
