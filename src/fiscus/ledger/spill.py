"""The writer's last resort: events it could not store go to a JSONL file, and come back on the next start."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import orjson

from fiscus.events.cost_event import CostEvent
from fiscus.events.outcome_event import OutcomeRecorded
from fiscus.ledger.base import Ledger

log = logging.getLogger("fiscus.ledger")


def spill(path: Path, events: Sequence[CostEvent | OutcomeRecorded]) -> None:
    """Append events to `path`, one JSON object a line, and sync it: these events exist nowhere else."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(orjson.dumps(e.to_dict()) + b"\n" for e in events)
    with path.open("ab") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def reingest(ledger: Ledger, path: Path, *, batch_size: int = 500) -> int:
    """Append the events spilled at `path` to `ledger` and remove the file; the count that were new.

    The file is first renamed so two processes starting at once do not both take it; appends are idempotent,
    so a crash half-way leaves nothing counted twice. If the ledger fails, the events go back to the spill file.
    """
    if not path.exists():
        return 0
    claimed = path.with_name(f"{path.name}.ingesting-{os.getpid()}")
    try:
        path.rename(claimed)
    except FileNotFoundError:
        return 0  # another process claimed it first
    events = [_decode(orjson.loads(line)) for line in claimed.read_bytes().splitlines() if line.strip()]
    costs = [e for e in events if isinstance(e, CostEvent)]
    outcomes = [e for e in events if isinstance(e, OutcomeRecorded)]
    new = 0
    try:
        for start in range(0, len(costs), batch_size):
            new += ledger.append(costs[start : start + batch_size])
        if outcomes:
            new += ledger.record_outcomes(outcomes)
    except Exception:
        spill(path, events)
        claimed.unlink()
        raise
    claimed.unlink()
    log.warning("fiscus ledger: re-ingested %d spilled events from %s (%d new)", len(events), path, new)
    return new


def _decode(data: dict[str, object]) -> CostEvent | OutcomeRecorded:
    """A spilled line: a session outcome says so in its `type`; anything else is a cost event."""
    if data.get("type") == "outcome_recorded":
        return OutcomeRecorded.from_dict(data)
    return CostEvent.from_dict(data)
