"""Typed events: the cost of a call, and what budgets and guards announce."""

from fiscus.events.cost_event import CallStatus, CostEvent, new_event_id
from fiscus.events.otel import otel_attributes

__all__ = ["CallStatus", "CostEvent", "new_event_id", "otel_attributes"]
