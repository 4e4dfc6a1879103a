"""`Attribution`: whom a call belongs to, so its cost can be charged back and its budgets found."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

# The dimensions a report can group by, in the order they are usually read.
DIMENSIONS: tuple[str, ...] = (
    "organization",
    "team",
    "agent",
    "workflow",
    "task_class",
    "session",
    "parent_session",
    "tenant",
    "user",
    "environment",
    "api_key",
    "outcome",
)


@dataclass(frozen=True, slots=True)
class Attribution:
    """Who a call is for. Every field is optional; unset fields are `None`, never "".

    `team` is the product area; `session` is the trace of one agent run and `parent_session` the run that
    spawned it (subagents); `outcome` labels what the call achieved (e.g. `resolved_case`) for cost per outcome.
    """

    organization: str | None = None
    team: str | None = None
    agent: str | None = None
    workflow: str | None = None
    task_class: str | None = None
    session: str | None = None
    parent_session: str | None = None
    tenant: str | None = None
    user: str | None = None
    environment: str | None = None
    api_key: str | None = None
    outcome: str | None = None

    def __post_init__(self) -> None:
        # Built for every call: one pass over the slots, and nothing more when every value is set or None.
        for name in DIMENSIONS:
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise TypeError(f"Attribution.{name} must be a string or None, got {type(value).__name__}")
            if not value:
                object.__setattr__(self, name, None)

    def refine(self, **values: str | None) -> Attribution:
        """A copy with the given dimensions set; `None` values leave the dimension as it was."""
        unknown = set(values) - set(DIMENSIONS)
        if unknown:
            raise ValueError(f"unknown attribution dimension(s): {', '.join(sorted(unknown))}")
        return replace(self, **{k: v for k, v in values.items() if v is not None})

    def get(self, dimension: str) -> str | None:
        if dimension not in DIMENSIONS:
            raise ValueError(f"unknown attribution dimension {dimension!r}; known: {', '.join(DIMENSIONS)}")
        return getattr(self, dimension)

    def to_dict(self) -> dict[str, str | None]:
        # Every value is a str or None: no deep copy needed (dataclasses.asdict's cost, once per settled call).
        return {name: getattr(self, name) for name in DIMENSIONS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attribution:
        return cls(**{k: data.get(k) for k in DIMENSIONS})
