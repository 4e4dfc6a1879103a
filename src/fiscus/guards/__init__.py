"""Runaway protection: loop detection and circuit breakers, shared by the SDK and the gateway."""

from fiscus.guards.breaker import BreakerConfig, BreakerState, CircuitBreaker, Trip
from fiscus.guards.loops import Detection, LoopConfig, LoopDetector, canonical_tool_call, similarity
from fiscus.guards.registry import BreakerRegistry

__all__ = [
    "BreakerConfig",
    "BreakerRegistry",
    "BreakerState",
    "CircuitBreaker",
    "Detection",
    "LoopConfig",
    "LoopDetector",
    "Trip",
    "canonical_tool_call",
    "similarity",
]
