"""Which guard refusals a granted key override lets a call past (`guards.overridable` in fiscus.yaml).

Nothing by default. Each name covers one kind of refusal:

- `global_spend_rate`: the global breaker (the account-wide spend rate);
- `agent_spend_rate`: each agent's breaker (its spend rate);
- `key_error_rate`: each virtual key's breaker (its own failed calls);
- `loop`: a loop detector's stop (a conversation stopped, or the ping-pong of a key's agents).

A model's error-rate breaker (`model:…`) is never overridable: it is open because the provider itself is failing,
and an override cannot make it answer. Only a key's override counts: a budget's override names a budget, not a
guard.
"""

from __future__ import annotations

from dataclasses import dataclass

from fiscus.guards.registry import GLOBAL, KEY_PREFIX, MODEL_PREFIX
from fiscus.overrides.model import EVERY_BUDGET

GLOBAL_SPEND_RATE = "global_spend_rate"
AGENT_SPEND_RATE = "agent_spend_rate"
KEY_ERROR_RATE = "key_error_rate"
LOOP = "loop"
KINDS = (GLOBAL_SPEND_RATE, AGENT_SPEND_RATE, KEY_ERROR_RATE, LOOP)
NEVER = {
    "model_error_rate": "a model's error-rate breaker is never overridable: it is open because the provider is "
    "failing (answered as an outage, 503), and an override cannot make it answer",
}


def kind_of(scope: str) -> str | None:
    """The kind of refusal an open breaker of `scope` is; None for a model's (never overridable)."""
    if scope == GLOBAL:
        return GLOBAL_SPEND_RATE
    if scope.startswith(KEY_PREFIX):
        return KEY_ERROR_RATE
    if scope.startswith(MODEL_PREFIX):
        return None
    return AGENT_SPEND_RATE


def check_kinds(names: list[str]) -> list[str]:
    """The names as given, each known and overridable; a `ValueError` naming the first that is not."""
    for name in names:
        if name in NEVER:
            raise ValueError(NEVER[name])
        if name not in KINDS:
            raise ValueError(f"unknown overridable refusal {name!r}; known: {', '.join(KINDS)}")
    return list(dict.fromkeys(names))


@dataclass(frozen=True, slots=True)
class GuardOverrides:
    """The kinds a key's override passes. Empty (the default): none."""

    kinds: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.kinds)

    def breaker(self, scope: str) -> bool:
        """Whether an open breaker of `scope` is passed by a key's override."""
        kind = kind_of(scope)
        return kind is not None and kind in self.kinds

    @property
    def loop(self) -> bool:
        return LOOP in self.kinds


def key_grant(granted: tuple[tuple[str, str], ...]) -> str | None:
    """The id of a key's override among a call's grants (a budget's override covers no guard)."""
    return next((override_id for name, override_id in granted if name == EVERY_BUDGET), None)


def passed_scopes(passed: tuple[tuple[str, str], ...]) -> frozenset[str]:
    """The breaker scopes among what an override let a call past (a loop stop is named `loop`)."""
    return frozenset(what for what, _ in passed if what != LOOP)
