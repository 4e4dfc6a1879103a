"""The audit chain: every ledger row carries `hash = sha256(prev_hash, chain, seq, canonical content)`.

Each writer (one `Ledger` object, so one process) keeps a chain of its own, so concurrent writers never wait on
one another for a shared head; within a chain `seq` counts 1, 2, 3… without gaps. The newest link of every
chain is also kept in `ledger_chains`, so deleting the last rows of a chain shows too. `fiscus.audit.verify`
walks the chains and names every row that was edited, deleted or inserted.

The content hashed is a canonical encoding of the event as the ledger returns it (money as exact decimal text,
the time in integer microseconds), so the same event hashes alike on every backend.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from fiscus.events.cost_event import CostEvent
from fiscus.events.policy_event import PolicyEvent
from fiscus.events.savings import LEVERS
from fiscus.ledger.rows import to_micros

GENESIS = "0" * 64  # the prev_hash of a chain's first row
CHAINS_TABLE = "ledger_chains"
# Rows already in a ledger when the chain was introduced are chained, in (ts, id) order, under this name.
LEGACY_CHAIN = "pre-audit"
CHAIN_MIGRATION = 5  # the schema version that brought the chain columns


def money_text(value: Decimal) -> str:
    """An exact decimal string without exponent or trailing zeros (for people and exports)."""
    if not value:
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _amount(value: Decimal) -> str:
    """An amount as every backend gives it back: `str` keeps coefficient and exponent, which SQLite's text and
    PostgreSQL's NUMERIC both preserve, except a positive exponent (1E+2 comes back as 100): that one is spelt
    out. Cheaper than `money_text` on the write path, and just as stable."""
    text = str(value)
    return money_text(value) if "E+" in text else text


def event_payload(e: CostEvent) -> bytes:
    """The canonical bytes of a cost event: every stored field, in a fixed order."""
    a, u, c = e.attribution, e.usage, e.cost
    return orjson.dumps(
        [
            "cost",
            e.id,
            to_micros(e.timestamp),
            e.provider,
            e.requested_model,
            e.served_model,
            e.model_tier,
            str(e.status),
            a.organization,
            a.team,
            a.agent,
            a.workflow,
            a.task_class,
            a.session,
            a.parent_session,
            a.tenant,
            a.user,
            a.environment,
            a.api_key,
            a.outcome,
            u.input_tokens,
            u.cache_read_tokens,
            u.cache_write_5m_tokens,
            u.cache_write_1h_tokens,
            u.output_tokens,
            u.reasoning_tokens,
            u.estimated,
            _amount(c.input),
            _amount(c.cache_read),
            _amount(c.cache_write_5m),
            _amount(c.cache_write_1h),
            _amount(c.output),
            _amount(c.tools),
            c.fallback_price,
            e.latency_ms,
            e.batch,
            e.streamed,
            e.error,
            e.decision,
            sorted(e.tags.items()),
            None if e.ungoverned_usd is None else _amount(e.ungoverned_usd),
            None if e.saved is None else [_amount(getattr(e.saved, lever)) for lever in LEVERS],
            e.policy_version,
        ]
    )


def policy_payload(p: PolicyEvent) -> bytes:
    """The canonical bytes of a policy event."""
    return orjson.dumps(["policy", p.id, to_micros(p.timestamp), p.kind, p.version, p.source, p.host])


def payload(item: CostEvent | PolicyEvent) -> bytes:
    return event_payload(item) if isinstance(item, CostEvent) else policy_payload(item)


def link_hash(prev_hash: str, chain: str, seq: int, content: bytes) -> str:
    digest = hashlib.sha256(f"{prev_hash}\n{chain}\n{seq}\n".encode())
    digest.update(content)
    return digest.hexdigest()


def new_chain_name() -> str:
    """host:pid:random — unique per writer, and says where the rows came from."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The newest link of a chain: its `seq` and `hash` (seq 0 and GENESIS before the first row)."""

    chain: str
    seq: int = 0
    hash: str = GENESIS


@dataclass(frozen=True, slots=True)
class ChainedRow:
    """A stored row with its chain columns as found (any of them may be missing or wrong after tampering)."""

    chain: str | None
    seq: int | None
    prev_hash: str | None
    hash: str | None
    item: CostEvent | PolicyEvent


Link = tuple[str, int, str, str]  # (chain, seq, prev_hash, hash): the CHAIN_COLUMNS of one row


class ChainWriter:
    """One writer's chain. `extend` links new rows without moving the head; the caller stores rows and head in
    one transaction, then `advance`s, so a failed write leaves the chain where it was. Not thread-safe: the
    ledger calls it under its write lock."""

    def __init__(self, name: str | None = None) -> None:
        self.head = ChainHead(name or new_chain_name())

    @property
    def name(self) -> str:
        return self.head.chain

    def extend(self, items: Sequence[CostEvent | PolicyEvent]) -> tuple[list[Link], ChainHead]:
        name, seq, prev = self.head.chain, self.head.seq, self.head.hash
        links: list[Link] = []
        for item in items:
            seq += 1
            digest = link_hash(prev, name, seq, payload(item))
            links.append((name, seq, prev, digest))
            prev = digest
        return links, ChainHead(name, seq, prev)

    def advance(self, head: ChainHead) -> None:
        self.head = head


def with_links(rows: Sequence[tuple[Any, ...]], links: Sequence[Link]) -> list[tuple[Any, ...]]:
    """Each row followed by its chain columns."""
    return [row + link for row, link in zip(rows, links, strict=True)]
