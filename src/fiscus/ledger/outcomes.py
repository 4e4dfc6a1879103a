"""Session outcomes in the ledger: the table's layout, the rows each backend writes, and the latest outcome per
session read back (a session's later record replaces an earlier one: escalated, then resolved)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from fiscus.events.cost_event import CostEvent
from fiscus.events.outcome_event import OutcomeRecorded, outcome_of_call

OUTCOMES_TABLE = "session_outcomes"
OUTCOME_COLUMNS = ("id", "ts", "session", "outcome", "source", "agent", "workflow", "task_class")
# Sessions asked for in one query: far under SQLite's and PostgreSQL's limits on bound parameters.
SESSION_CHUNK = 500


def outcome_row(record: OutcomeRecorded, ts: Callable[[datetime], Any]) -> tuple[Any, ...]:
    """`record` in `OUTCOME_COLUMNS` order; `ts` encodes the timestamp as the backend stores it."""
    return (
        record.id,
        ts(record.timestamp),
        record.session,
        record.outcome,
        record.source,
        record.agent,
        record.workflow,
        record.task_class,
    )


def insert_sql(placeholder: str, *, conflict: str) -> str:
    """The insert of one row; `conflict` is the backend's way of skipping an id already kept."""
    values = ", ".join([placeholder] * len(OUTCOME_COLUMNS))
    columns = ", ".join(OUTCOME_COLUMNS)
    if conflict == "or ignore":
        return f"INSERT OR IGNORE INTO {OUTCOMES_TABLE} ({columns}) VALUES ({values})"
    return f"INSERT INTO {OUTCOMES_TABLE} ({columns}) VALUES ({values}) ON CONFLICT (id) DO NOTHING"


def select_sql(placeholder: str, count: int) -> str:
    marks = ", ".join([placeholder] * count)
    return f"SELECT session, outcome, ts, id FROM {OUTCOMES_TABLE} WHERE session IN ({marks})"


def latest_by_session(rows: Iterable[Sequence[Any]]) -> dict[str, str]:
    """Rows (session, outcome, ts, id) → each session's latest outcome (ties on time go to the greater id)."""
    best: dict[str, tuple[Any, str, str]] = {}
    for session, outcome, ts, event_id in rows:
        seen = best.get(session)
        if seen is None or (ts, event_id) > (seen[0], seen[1]):
            best[session] = (ts, event_id, outcome)
    return {session: value[2] for session, value in best.items()}


def chunks(sessions: Iterable[str]) -> Iterable[list[str]]:
    unique = sorted(set(sessions))
    for start in range(0, len(unique), SESSION_CHUNK):
        yield unique[start : start + SESSION_CHUNK]


def record_call_outcome(writer: Any, event: CostEvent) -> None:
    """Queue the session outcome `event` carried (if any) on `writer` (a `LedgerWriter`; None: no ledger)."""
    recorded = outcome_of_call(event)
    if recorded is not None and writer is not None:
        writer.submit(recorded)
