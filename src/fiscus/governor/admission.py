"""`Admission`: the governor's answer to `admit`, held by the door until it calls `settle`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from fiscus.engine.decision import Decision
from fiscus.engine.ports import Reservation
from fiscus.engine.request import CallRequest
from fiscus.events.cost_event import CostEvent
from fiscus.events.savings import Shaped
from fiscus.pricing.sheet import PriceSheet


@dataclass(slots=True)
class Admission:
    request: CallRequest
    decision: Decision  # action, model (after downgrade), max_tokens (clamped), compress_to_tokens, reasons, retry_at
    reservation: Reservation | None  # None when no model will be called (partial / block)
    event_id: str  # the CostEvent id this call will be recorded under
    timestamp: datetime  # when admitted (UTC)
    started: float  # time.perf_counter() at admission, for latency
    model_tier: str | None = None
    event: CostEvent | None = field(default=None, repr=False)  # set by the first settle (settle is idempotent)
    sheet: PriceSheet | None = field(default=None, repr=False)  # prices of `decision.model` at admission (for settle)
    shaped: Shaped | None = None  # what the door cut from the input (context window, summary), for the savings
    cost_scale: int = 1_000_000  # the share of its estimate the reserve took (`Plan.cost_scale`), for calibration
    announced: tuple[str, ...] = ()  # the fired-threshold keys this admission claimed (and announced)
