"""The policy file: budgets on scopes and windows, thresholds and their actions, model tier ladders."""

from fiscus.policy.ladders import DEFAULT_LADDERS, Ladders, Tier
from fiscus.policy.load import DEFAULT_THRESHOLDS, compile_policy, load_policy, parse_policy
from fiscus.policy.types import EACH, Budget, Policy, Threshold, Window

__all__ = [
    "DEFAULT_LADDERS",
    "DEFAULT_THRESHOLDS",
    "EACH",
    "Budget",
    "Ladders",
    "Policy",
    "Threshold",
    "Tier",
    "Window",
    "compile_policy",
    "load_policy",
    "parse_policy",
]
