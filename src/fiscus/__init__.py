"""fiscus: price, attribute, bound and report every LLM call.

    import fiscus
    client = fiscus.wrap(openai.OpenAI(), agent="researcher", team="growth")
    with fiscus.session(agent="researcher", ceiling_usd=2, max_steps=40) as s:
        client.chat.completions.create(...)

Names are imported on first use, so `import fiscus` (and the CLI) stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "wrap": "fiscus.sdk.wrap",
    "cascade": "fiscus.sdk.cascade",
    "acascade": "fiscus.sdk.cascade",
    "session": "fiscus.sdk.session",
    "Session": "fiscus.sdk.session",
    "current_session": "fiscus.sdk.session",
    "BudgetBlocked": "fiscus.sdk.errors",
    "BudgetExhausted": "fiscus.sdk.errors",
    "LoopDetectedError": "fiscus.sdk.errors",
    "GuardRefused": "fiscus.sdk.errors",
    "Attribution": "fiscus.attribution",
    "Usage": "fiscus.usage.model",
    "Cost": "fiscus.pricing.cost",
    "CostEvent": "fiscus.events.cost_event",
    "CallStatus": "fiscus.events.cost_event",
    "LoopDetected": "fiscus.events.guard_events",
    "BreakerTripped": "fiscus.events.guard_events",
    "SessionEnded": "fiscus.events.guard_events",
    "LoopConfig": "fiscus.guards.loops",
    "BreakerConfig": "fiscus.guards.breaker",
    "BreakerRegistry": "fiscus.guards.registry",
    "FiscusError": "fiscus.errors",
    "ConfigError": "fiscus.errors",
}

__all__ = [
    "Attribution",
    "BreakerConfig",
    "BreakerRegistry",
    "BreakerTripped",
    "BudgetBlocked",
    "BudgetExhausted",
    "CallStatus",
    "ConfigError",
    "Cost",
    "CostEvent",
    "FiscusError",
    "GuardRefused",
    "LoopConfig",
    "LoopDetected",
    "LoopDetectedError",
    "Session",
    "SessionEnded",
    "Usage",
    "acascade",
    "cascade",
    "current_session",
    "session",
    "wrap",
]

if TYPE_CHECKING:
    from fiscus.attribution import Attribution
    from fiscus.errors import ConfigError, FiscusError
    from fiscus.events.cost_event import CallStatus, CostEvent
    from fiscus.events.guard_events import BreakerTripped, LoopDetected, SessionEnded
    from fiscus.guards.breaker import BreakerConfig
    from fiscus.guards.loops import LoopConfig
    from fiscus.guards.registry import BreakerRegistry
    from fiscus.pricing.cost import Cost
    from fiscus.sdk.cascade import acascade, cascade
    from fiscus.sdk.errors import BudgetBlocked, BudgetExhausted, GuardRefused, LoopDetectedError
    from fiscus.sdk.session import Session, current_session, session
    from fiscus.sdk.wrap import wrap
    from fiscus.usage.model import Usage


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fiscus' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
