"""`PolicyEvent`: a policy taking effect (at start or on reload), kept in the ledger's audit chain beside the
cost events it governs, so an auditor sees which policy version decided which calls."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from fiscus.events.cost_event import new_event_id


class PolicyEventKind(StrEnum):
    START = "start"  # the process began enforcing this policy
    RELOAD = "reload"  # the policy changed while running


@dataclass(frozen=True, slots=True)
class PolicyEvent:
    version: str  # `Policy.version`: a hash of the validated policy
    source: str | None = None  # the file it was read from
    kind: PolicyEventKind = PolicyEventKind.START
    host: str = field(default_factory=socket.gethostname)
    id: str = field(default_factory=new_event_id)
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "timestamp": self.timestamp.isoformat(),
            "kind": str(self.kind),
            "version": self.version,
            "source": self.source,
            "host": self.host,
        }
