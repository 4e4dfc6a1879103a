"""The in-process door: `wrap(client)` governs an official OpenAI or Anthropic client; `session()` bounds a run."""

from fiscus.sdk.errors import BudgetBlocked, BudgetExhausted, GuardRefused, LoopDetectedError
from fiscus.sdk.session import Session, add_listener, current_session, remove_listener, session
from fiscus.sdk.wrap import wrap

__all__ = [
    "BudgetBlocked",
    "BudgetExhausted",
    "GuardRefused",
    "LoopDetectedError",
    "Session",
    "add_listener",
    "current_session",
    "remove_listener",
    "session",
    "wrap",
]
