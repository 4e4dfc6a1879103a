"""The budget engine: pure decisions over budgets; the `BudgetStore` interface lives in `fiscus.stores`."""

from fiscus.engine.decision import Action, BudgetReason, Decision

__all__ = ["Action", "BudgetReason", "Decision"]
