"""The audit export: what an auditor asks of each call — who, which model, tokens, cost, the budget decision,
any override, the policy version that decided it — and every policy change, in time order. It carries no
prompt or completion text (the ledger keeps none) and leaves out free-text fields that could quote a provider's
answer (errors) and caller-set tags; the ids tie each line to `fiscus audit verify`."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from fiscus.events.cost_event import CostEvent
from fiscus.events.policy_event import PolicyEvent
from fiscus.ledger.base import Ledger
from fiscus.ledger.chain import money_text

FIELDS: tuple[str, ...] = (
    "record",
    "id",
    "timestamp",
    "organization",
    "team",
    "agent",
    "workflow",
    "task_class",
    "tenant",
    "user",
    "api_key",
    "environment",
    "session",
    "provider",
    "requested_model",
    "served_model",
    "status",
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "usage_estimated",
    "cost_usd",
    "fallback_price",
    "decision",
    "override",
    "budget",
    "policy_version",
    "policy_source",
    "host",
)


def call_record(e: CostEvent) -> dict[str, Any]:
    a, u = e.attribution, e.usage
    return {
        "record": "call",
        "id": e.id,
        "timestamp": e.timestamp.isoformat(),
        "organization": a.organization,
        "team": a.team,
        "agent": a.agent,
        "workflow": a.workflow,
        "task_class": a.task_class,
        "tenant": a.tenant,
        "user": a.user,
        "api_key": a.api_key,
        "environment": a.environment,
        "session": a.session,
        "provider": e.provider,
        "requested_model": e.requested_model,
        "served_model": e.served_model,
        "status": str(e.status),
        "input_tokens": u.input_tokens,
        "cache_read_tokens": u.cache_read_tokens,
        "cache_write_tokens": u.cache_write_5m_tokens + u.cache_write_1h_tokens,
        "output_tokens": u.output_tokens,
        "reasoning_tokens": u.reasoning_tokens,
        "usage_estimated": u.estimated,
        "cost_usd": money_text(e.cost.total),
        "fallback_price": e.cost.fallback_price,
        "decision": e.decision,
        "override": e.tags.get("override"),
        "budget": e.tags.get("budget"),
        "policy_version": e.policy_version,
        "policy_source": None,
        "host": None,
    }


def policy_record(p: PolicyEvent) -> dict[str, Any]:
    record: dict[str, Any] = dict.fromkeys(FIELDS)
    record.update(
        record=f"policy_{p.kind}",
        id=p.id,
        timestamp=p.timestamp.isoformat(),
        policy_version=p.version,
        policy_source=p.source,
        host=p.host,
    )
    return record


def audit_records(
    ledger: Ledger, *, since: datetime | None = None, until: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Calls and policy events with `since <= timestamp < until`, oldest first (a policy event before the calls
    of the same instant)."""
    policies = iter(ledger.policy_events(since=since, until=until))
    pending = next(policies, None)
    for event in ledger.events(since=since, until=until):
        while pending is not None and pending.timestamp <= event.timestamp:
            yield policy_record(pending)
            pending = next(policies, None)
        yield call_record(event)
    while pending is not None:
        yield policy_record(pending)
        pending = next(policies, None)


def write_csv(records: Iterable[dict[str, Any]], out: io.TextIOBase | Any) -> int:
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for record in records:
        writer.writerow({k: _cell(v) for k, v in record.items()})
        count += 1
    return count


def write_jsonl(records: Iterable[dict[str, Any]], out: io.TextIOBase | Any) -> int:
    count = 0
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
