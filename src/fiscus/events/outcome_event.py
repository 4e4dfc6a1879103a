"""`OutcomeRecorded`: what a session (one case: a ticket, a lead, a research task) achieved, attached after its
calls. Cost per outcome is counted per case from these, not per labelled call."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from fiscus.events.cost_event import CostEvent, new_event_id

OutcomeSource = Literal["sdk", "admin", "header"]
MAX_OUTCOME_CHARS = 256  # as long as an x-fiscus-* header value may be


def check_outcome_label(label: object, *, what: str = "outcome") -> str:
    """A usable outcome label (e.g. `resolved`, `lead_qualified`); `ValueError` says why one is not."""
    if not isinstance(label, str):
        raise ValueError(f"{what} must be a string, got {type(label).__name__}")
    value = label.strip()
    if not value:
        raise ValueError(f"{what} must not be empty")
    if len(value) > MAX_OUTCOME_CHARS:
        raise ValueError(f"{what} is longer than {MAX_OUTCOME_CHARS} characters")
    if not value.isprintable():
        raise ValueError(f"{what} contains control characters")
    return value


@dataclass(frozen=True, slots=True)
class OutcomeRecorded:
    """Session `session` reached `outcome` (the latest record of a session is its outcome). `source` says how
    it arrived: the SDK's `session.outcome = …`, the admin API, or an `x-fiscus-outcome` header on a call."""

    session: str
    outcome: str
    source: OutcomeSource
    agent: str | None = None
    workflow: str | None = None
    task_class: str | None = None
    id: str = field(default_factory=new_event_id)
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "outcome_recorded",
            "id": self.id,
            "timestamp": self.timestamp.isoformat(),
            "session": self.session,
            "outcome": self.outcome,
            "source": self.source,
            "agent": self.agent,
            "workflow": self.workflow,
            "task_class": self.task_class,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutcomeRecorded:
        ts = datetime.fromisoformat(data["timestamp"])
        return cls(
            session=data["session"],
            outcome=data["outcome"],
            source=data["source"],
            agent=data.get("agent"),
            workflow=data.get("workflow"),
            task_class=data.get("task_class"),
            id=data["id"],
            timestamp=ts if ts.tzinfo else ts.replace(tzinfo=UTC),
        )


def outcome_of_call(event: CostEvent, *, source: OutcomeSource = "header") -> OutcomeRecorded | None:
    """The session outcome a call carried (an `x-fiscus-outcome` header on a session's last call), as of the
    call's time; None for a call without an outcome or outside any session."""
    a = event.attribution
    if a.outcome is None or a.session is None:
        return None
    return OutcomeRecorded(
        session=a.session,
        outcome=a.outcome,
        source=source,
        agent=a.agent,
        workflow=a.workflow,
        task_class=a.task_class,
        id=f"{event.id}:outcome",
        timestamp=event.timestamp,
    )
