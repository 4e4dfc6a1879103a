"""`verify(ledger)`: walk every writer's audit chain and name each row that was edited, deleted or inserted.

A row is checked three ways. Its own hash must match its content and its link (an edit of any stored field
fails this). Its `prev_hash` must be the hash of the row before it, and its `seq` one more (a deleted row, or
an edited row whose hash was recomputed to hide the edit, fails this at the next row). The last row of each
chain must be the head kept in `ledger_chains` (deleting a chain's newest rows fails this). A row with no chain
link at all was written behind the ledger's back. Anchors (heads saved from an earlier run, e.g. by an
auditor) must still be in the chain as they were, which also catches a chain rewritten from that point on.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fiscus.events.cost_event import CostEvent
from fiscus.ledger.base import Ledger
from fiscus.ledger.chain import GENESIS, ChainedRow, ChainHead, link_hash, payload

COST_TABLE, POLICY_TABLE = "cost_events", "policy_events"


class FindingKind(StrEnum):
    EDITED = "edited"
    DELETED = "deleted"
    INSERTED = "inserted"


@dataclass(frozen=True, slots=True)
class Finding:
    """One tampered place: what happened, to which row (or between which rows), and where in which chain."""

    kind: FindingKind
    message: str
    row_id: str | None = None
    table: str | None = None
    chain: str | None = None
    seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "row_id": self.row_id,
            "table": self.table,
            "chain": self.chain,
            "seq": self.seq,
            "message": self.message,
        }


@dataclass(slots=True)
class Verification:
    rows: int = 0
    chains: int = 0
    heads: list[ChainHead] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rows": self.rows,
            "chains": self.chains,
            "findings": [f.to_dict() for f in self.findings],
            "heads": [{"chain": h.chain, "seq": h.seq, "hash": h.hash} for h in self.heads],
        }


def _tagged(rows: Iterable[ChainedRow], table: str) -> Iterator[tuple[ChainedRow, str]]:
    for row in rows:
        yield row, table


def _order(item: tuple[ChainedRow, str]) -> tuple[bool, str, int]:
    row = item[0]
    return (row.chain is None, row.chain or "", row.seq or 0)


def verify(ledger: Ledger, *, anchors: Mapping[str, ChainHead] | None = None) -> Verification:
    """Check every chain of `ledger`; `anchors` are heads recorded earlier that must still hold."""
    heads = {h.chain: h for h in ledger.chain_heads()}
    rows = heapq.merge(
        _tagged(ledger.chained_rows(COST_TABLE), COST_TABLE),
        _tagged(ledger.chained_rows(POLICY_TABLE), POLICY_TABLE),
        key=_order,
    )
    walk = _Walk(heads, dict(anchors or {}))
    for row, table in rows:
        walk.step(row, table)
    walk.finish_chain()
    for name in sorted(set(heads) - walk.seen):
        head = heads[name]
        walk.add(FindingKind.DELETED, f"every row of chain {name} (seq 1..{head.seq}) was deleted", chain=name)
    for name in sorted(set(walk.anchors) - walk.seen):
        walk.add(FindingKind.DELETED, f"anchored chain {name} is gone from the ledger", chain=name)
    return Verification(
        rows=walk.count, chains=len(walk.seen), heads=sorted(heads.values(), key=lambda h: h.chain), findings=walk.found
    )


def _describe(row: ChainedRow, table: str) -> str:
    what = "policy event" if table == POLICY_TABLE else "event"
    if isinstance(row.item, CostEvent):
        return f"{what} {row.item.id} ({row.item.timestamp.isoformat()})"
    return f"{what} {row.item.id}"


class _Walk:
    """The state of one pass over the rows in (chain, seq) order."""

    def __init__(self, heads: dict[str, ChainHead], anchors: dict[str, ChainHead]) -> None:
        self.heads = heads
        self.anchors = anchors
        self.found: list[Finding] = []
        self.seen: set[str] = set()
        self.count = 0
        self.chain: str | None = None
        self.seq = 0
        self.hash = GENESIS
        self.last: ChainedRow | None = None
        self.last_table = COST_TABLE

    def add(self, kind: FindingKind, message: str, **where: Any) -> None:
        self.found.append(Finding(kind, message, **where))

    def step(self, row: ChainedRow, table: str) -> None:
        self.count += 1
        where = {"row_id": row.item.id, "table": table, "chain": row.chain, "seq": row.seq}
        if row.chain is None or row.seq is None or row.hash is None or row.prev_hash is None:
            self.add(FindingKind.INSERTED, f"{_describe(row, table)} carries no chain link", **where)
            return
        if row.chain != self.chain:
            self.finish_chain()
            self.start_chain(row.chain)
        name = row.chain
        if link_hash(row.prev_hash, name, row.seq, payload(row.item)) != row.hash:
            self.add(FindingKind.EDITED, f"{_describe(row, table)} no longer matches its hash", **where)
        if row.seq > self.seq + 1:
            gap = f"seq {self.seq + 1}" if row.seq == self.seq + 2 else f"seq {self.seq + 1}..{row.seq - 1}"
            before = f"after {_describe(self.last, self.last_table)} " if self.last else "at the start "
            self.add(
                FindingKind.DELETED,
                f"{row.seq - self.seq - 1} row(s) of chain {name} ({gap}) deleted {before}and before {row.item.id}",
                chain=name,
                seq=self.seq + 1,
                row_id=row.item.id,
                table=table,
            )
        elif row.seq <= self.seq:
            self.add(FindingKind.INSERTED, f"{_describe(row, table)} repeats seq {row.seq} of {name}", **where)
            return
        elif row.prev_hash != self.hash and self.last is not None:
            # The row before kept a self-consistent hash that is not the one this row was linked to: it was
            # rewritten (content and hash together) or put in place of the original.
            prev = self.last
            self.add(
                FindingKind.EDITED,
                f"{_describe(prev, self.last_table)} was rewritten or replaced: {row.item.id} links to another hash",
                row_id=prev.item.id,
                table=self.last_table,
                chain=name,
                seq=prev.seq,
            )
        anchor = self.anchors.get(name)
        if anchor is not None and anchor.seq == row.seq and anchor.hash != row.hash:
            self.add(FindingKind.EDITED, f"{_describe(row, table)} differs from the anchored hash", **where)
        self.seq, self.hash, self.last, self.last_table = row.seq, row.hash, row, table

    def start_chain(self, name: str) -> None:
        self.chain, self.seq, self.hash, self.last = name, 0, GENESIS, None
        self.seen.add(name)

    def finish_chain(self) -> None:
        name = self.chain
        if name is None:
            return
        head = self.heads.get(name)
        last = self.last
        if head is None:
            self.add(FindingKind.INSERTED, f"chain {name} has no head record: its rows were not written by a ledger",
                     chain=name)  # fmt: skip
        elif head.seq > self.seq:
            after = f" after {last.item.id}" if last else ""
            self.add(
                FindingKind.DELETED,
                f"the last {head.seq - self.seq} row(s) of chain {name} (seq {self.seq + 1}..{head.seq})"
                f" deleted{after}",
                chain=name,
                seq=self.seq + 1,
            )
        elif head.seq < self.seq:
            self.add(
                FindingKind.INSERTED,
                f"chain {name} runs past its head (seq {head.seq}) to seq {self.seq}: rows added at its end",
                chain=name,
                seq=head.seq + 1,
            )
        elif head.seq == self.seq and head.hash != self.hash and last is not None:
            self.add(
                FindingKind.EDITED,
                f"{_describe(last, self.last_table)} was rewritten: the chain head holds another hash",
                row_id=last.item.id,
                table=self.last_table,
                chain=name,
                seq=last.seq,
            )
        anchor = self.anchors.get(name)
        if anchor is not None and anchor.seq > self.seq:
            self.add(FindingKind.DELETED, f"chain {name} ends at seq {self.seq}, before anchored seq {anchor.seq}",
                     chain=name)  # fmt: skip
        self.chain = None
