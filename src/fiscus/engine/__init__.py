"""The budget engine: pure decisions over budgets; the `BudgetStore` interface lives in `fiscus.stores`."""

from fiscus.engine.decide import EFFECTS, Effect, decide, utilisation_of
from fiscus.engine.decision import Action, BudgetReason, Decision, ThresholdHit
from fiscus.engine.engine import Engine
from fiscus.engine.plan import Plan, PlanLine
from fiscus.engine.request import CallRequest
from fiscus.engine.windows import WindowInstance, window_instance

__all__ = [
    "EFFECTS",
    "Action",
    "BudgetReason",
    "CallRequest",
    "Decision",
    "Effect",
    "Engine",
    "Plan",
    "PlanLine",
    "ThresholdHit",
    "WindowInstance",
    "decide",
    "utilisation_of",
    "window_instance",
]
