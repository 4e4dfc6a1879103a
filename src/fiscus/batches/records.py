"""What fiscus remembers of a batch it admitted, until its results are settled: who submitted it (key,
attribution, priority), when (its results are priced at the prices in force then), and per model group the
reservation it holds and each request's estimate. Serialised as one JSON document (`batches.store` keeps it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from fiscus.attribution import Attribution
from fiscus.engine.ports import Amounts, Limits, Reservation, ReserveLine


@dataclass(slots=True)
class BatchGroup:
    """The requests of a batch for one model, admitted together under one reservation."""

    model: str
    event_id: str  # the admission's id; each result's event id is derived from it and the custom_id
    action: str  # the budget decision the group was admitted under (allow, warn, ...)
    reservation: Reservation | None
    requests: dict[str, tuple[int, int]]  # custom_id → (input tokens, output cap) as estimated at submit

    def to_dict(self) -> dict[str, Any]:
        r = self.reservation
        return {
            "model": self.model,
            "event_id": self.event_id,
            "action": self.action,
            "requests": self.requests,
            "reservation": None if r is None else {"id": r.id, "lease": r.lease_expires_at, "lines": _lines(r)},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchGroup:
        held = data.get("reservation")
        reservation = None
        if held is not None:
            lines = tuple(
                ReserveLine(
                    line["budget"], tuple(line["keys"]), Limits(*line["limits"]), Amounts(*line["amount"]), line["exp"]
                )
                for line in held["lines"]
            )
            reservation = Reservation(held["id"], lines, held["lease"])
        requests = {cid: (int(v[0]), int(v[1])) for cid, v in data["requests"].items()}
        return cls(data["model"], data["event_id"], data["action"], reservation, requests)


def _lines(reservation: Reservation) -> list[dict[str, Any]]:
    return [
        {
            "budget": line.budget,
            "keys": list(line.keys),
            "limits": [line.limits.nanos, line.limits.tokens, line.limits.requests],
            "amount": [line.amount.nanos, line.amount.tokens, line.amount.requests],
            "exp": line.expires_at,
        }
        for line in reservation.lines
    ]


@dataclass(slots=True)
class BatchRecord:
    id: str  # the provider's batch id
    wire: str  # "openai" | "anthropic"
    provider: str  # the configured provider it was sent to
    endpoint: str  # the endpoint its requests go to (/v1/chat/completions, /v1/responses, /v1/messages)
    key_id: str
    attribution: Attribution
    priority: str
    admitted_at: float  # epoch seconds: results are priced at the prices in force then
    worst_case_usd: str
    groups: list[BatchGroup] = field(default_factory=list)
    settled: bool = False

    @property
    def request_count(self) -> int:
        return sum(len(group.requests) for group in self.groups)

    def to_json(self) -> str:
        data = {
            "id": self.id,
            "wire": self.wire,
            "provider": self.provider,
            "endpoint": self.endpoint,
            "key_id": self.key_id,
            "attribution": self.attribution.to_dict(),
            "priority": self.priority,
            "admitted_at": self.admitted_at,
            "worst_case_usd": self.worst_case_usd,
            "groups": [group.to_dict() for group in self.groups],
        }
        return orjson.dumps(data).decode()

    @classmethod
    def from_json(cls, text: str, settled: bool) -> BatchRecord:
        d = orjson.loads(text)
        groups = [BatchGroup.from_dict(g) for g in d["groups"]]
        attribution = Attribution.from_dict(d["attribution"])
        return cls(
            d["id"], d["wire"], d["provider"], d["endpoint"], d["key_id"], attribution, d["priority"],
            d["admitted_at"], d["worst_case_usd"], groups, settled,
        )  # fmt: skip
