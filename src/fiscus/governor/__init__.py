"""The governor: the one pipeline both doors use (attribute → estimate → decide & reserve → … → settle → record)."""

from fiscus.engine.request import CallRequest
from fiscus.governor.admission import Admission
from fiscus.governor.governor import RESERVE_ATTEMPTS, Governor
from fiscus.governor.status import BudgetStatus

__all__ = ["RESERVE_ATTEMPTS", "Admission", "BudgetStatus", "CallRequest", "Governor"]
