"""Runaway protection: loop detection and circuit breakers, shared by the SDK and the gateway."""

from fiscus.guards.breaker import BreakerConfig, BreakerState, CircuitBreaker, Trip
from fiscus.guards.loops import Detection, LoopConfig, LoopDetector, canonical_tool_call, similarity
from fiscus.guards.record import BreakerRecord
from fiscus.guards.registry import BreakerRegistry
from fiscus.guards.state import BreakerStateStore, MemoryBreakerState, open_breaker_state

__all__ = [
    "BreakerConfig",
    "BreakerRecord",
    "BreakerRegistry",
    "BreakerState",
    "BreakerStateStore",
    "CircuitBreaker",
    "Detection",
    "LoopConfig",
    "LoopDetector",
    "MemoryBreakerState",
    "Trip",
    "canonical_tool_call",
    "open_breaker_state",
    "similarity",
]
