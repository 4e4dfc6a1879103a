"""Admin routes for cases: attach an outcome to a session after its calls, and cost per outcome per case."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field, field_validator

from fiscus.errors import FiscusError
from fiscus.events.outcome_event import MAX_OUTCOME_CHARS, OutcomeRecorded, check_outcome_label
from fiscus.reports.period import parse_where

_FLUSH_TIMEOUT_S = 10.0


class NewOutcome(BaseModel):
    outcome: str = Field(description="what the case achieved, e.g. resolved, escalated, lead_qualified, failed")
    agent: str | None = Field(default=None, max_length=MAX_OUTCOME_CHARS)
    workflow: str | None = Field(default=None, max_length=MAX_OUTCOME_CHARS)
    task_class: str | None = Field(default=None, max_length=MAX_OUTCOME_CHARS)

    @field_validator("outcome")
    @classmethod
    def _label(cls, value: str) -> str:
        return check_outcome_label(value)


def cases_router(
    *, governor: Any, ledger_url: str, open_ledger: Callable[[str], Any], since_window: Callable[[str], datetime]
) -> APIRouter:
    router = APIRouter()

    @router.post("/sessions/{session_id}/outcome", status_code=201)
    def attach_outcome(session_id: str, body: NewOutcome) -> dict[str, Any]:
        """Attach an outcome to a session (a case) after its calls; the latest one attached counts. Answers once
        the ledger has it."""
        try:
            session = check_outcome_label(session_id, what="session")
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        writer = getattr(governor, "ledger", None)
        if writer is None:
            raise HTTPException(503, "this gateway keeps no ledger")
        record = OutcomeRecorded(
            session=session,
            outcome=body.outcome,
            source="admin",
            agent=body.agent,
            workflow=body.workflow,
            task_class=body.task_class,
        )
        try:
            writer.submit(record)
        except FiscusError as exc:
            raise HTTPException(503, str(exc)) from None
        if not writer.flush(_FLUSH_TIMEOUT_S):
            raise HTTPException(503, "the ledger did not confirm the outcome in time; it stays queued")
        return record.to_dict()

    @router.get("/cases")
    def cases(
        by: str = Query("workflow", description="comma-separated dimensions, e.g. workflow or team,task_class"),
        window: str = Query("week", description="hour, day, week or month back from now"),
        where: list[str] = Query(default_factory=list, description="dimension=value filters"),
    ) -> list[dict[str, Any]]:
        """Cost per outcome per case (session): cases per outcome, their cost, the cost per outcome, and the cases
        with no outcome, per group."""
        from fiscus.reports.cases import case_costs

        try:
            since = since_window(window)
            keys = tuple(p.strip() for p in by.split(",") if p.strip())
            with open_ledger(ledger_url) as ledger:
                groups = case_costs(ledger, by=keys, since=since, until=datetime.now(UTC), where=parse_where(where))
        except FiscusError as exc:
            raise HTTPException(400, str(exc)) from None
        return [g.to_dict() for g in groups]

    return router
