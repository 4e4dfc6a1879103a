"""Typed events: the cost of a call, and what budgets and guards announce."""

from fiscus.events.cost_event import CallStatus, CostEvent, new_event_id
from fiscus.events.otel import otel_attributes
from fiscus.events.policy_event import PolicyEvent, PolicyEventKind

__all__ = ["CallStatus", "CostEvent", "PolicyEvent", "PolicyEventKind", "new_event_id", "otel_attributes"]
