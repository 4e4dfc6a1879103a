"""`Outcome`: how a call ended, as the keywords `Governor.settle`, `asettle` and `settle_steps` take."""

from __future__ import annotations

from typing import TypedDict

from fiscus.events.cost_event import CallStatus


class Outcome(TypedDict, total=False):
    status: CallStatus  # OK unless given
    served_model: str | None  # the model that answered, when not the decision's
    latency_ms: int | None  # measured from admission when not given
    error: str | None
    streamed: bool
    outcome: str | None  # the caller's own word for how the task went (refines attribution)
    served_provider: str | None  # a fallback served elsewhere: priced and recorded as that provider's
    tags: dict[str, str] | None  # recorded on the event beside the governor's own (a batch result: batch, custom_id)
