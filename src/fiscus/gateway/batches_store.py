"""Where the gateway remembers the batches it admitted: who submitted each one (key, attribution), the reservations
it holds and each request's estimate, until its results are settled — in the key store's database (`keys:`,
SQLite or PostgreSQL), so every worker and a restarted gateway can settle a batch another one submitted. Files
uploaded through the gateway are kept with their key, so one key cannot read another's files."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from fiscus.attribution import Attribution
from fiscus.engine.ports import Amounts, Limits, Reservation, ReserveLine
from fiscus.errors import StoreError

_TABLES = (
    "CREATE TABLE IF NOT EXISTS fiscus_batches (id TEXT PRIMARY KEY, key_id TEXT NOT NULL, settled INTEGER NOT NULL"
    " DEFAULT 0, created_at DOUBLE PRECISION NOT NULL, record TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS fiscus_batch_files (id TEXT PRIMARY KEY, key_id TEXT NOT NULL)",
)


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


class BatchStore:
    """Thread-safe; each call is one statement. SQLite (`sqlite:///path`) or PostgreSQL (`postgresql://...`)."""

    def __init__(self, url: str) -> None:
        self._lock = threading.Lock()
        self._url = url
        self._pg = url.startswith(("postgresql://", "postgres://"))
        self._mark = "%s" if self._pg else "?"
        self._conn: Any = None
        try:
            self._conn = self._connect()
            for statement in _TABLES:
                self._conn.execute(statement)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"batch store {url}: cannot open ({exc})") from None
        except Exception as exc:  # psycopg's errors, without importing it for SQLite users
            raise StoreError(f"batch store: cannot open ({str(exc).splitlines()[0]})") from None

    def _connect(self) -> Any:
        if self._pg:
            import psycopg

            return psycopg.connect(self._url, autocommit=True, connect_timeout=5)
        if not self._url.startswith("sqlite:///"):
            raise StoreError(f"unsupported batch store URL {self._url!r}; use sqlite:///path or postgresql://...")
        path = self._url.removeprefix("sqlite:///")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 5000")
        return conn

    def _run(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        sql = sql.replace("?", self._mark)
        with self._lock:
            try:
                if self._pg and self._conn.closed:
                    self._conn = self._connect()
                cursor = self._conn.execute(sql, params)
                return cursor.fetchall() if cursor.description else []
            except StoreError:
                raise
            except Exception as exc:  # sqlite3.Error or psycopg.Error: one readable line
                raise StoreError(f"batch store: {str(exc).splitlines()[0]}") from None

    def add(self, record: BatchRecord) -> None:
        self._run(
            "INSERT INTO fiscus_batches (id, key_id, settled, created_at, record) VALUES (?, ?, 0, ?, ?)",
            (record.id, record.key_id, record.admitted_at, record.to_json()),
        )

    def get(self, batch_id: str) -> BatchRecord | None:
        rows = self._run("SELECT record, settled FROM fiscus_batches WHERE id = ?", (batch_id,))
        return BatchRecord.from_json(rows[0][0], bool(rows[0][1])) if rows else None

    def mark_settled(self, batch_id: str) -> None:
        self._run("UPDATE fiscus_batches SET settled = 1 WHERE id = ?", (batch_id,))

    def unsettled(self, limit: int = 100) -> list[str]:
        """Ids of batches whose results are not settled yet, oldest first."""
        rows = self._run("SELECT id FROM fiscus_batches WHERE settled = 0 ORDER BY created_at LIMIT ?", (limit,))
        return [row[0] for row in rows]

    def own_file(self, file_id: str, key_id: str) -> None:
        conflict = "ON CONFLICT (id) DO NOTHING" if self._pg else ""
        verb = "INSERT" if self._pg else "INSERT OR IGNORE"
        self._run(f"{verb} INTO fiscus_batch_files (id, key_id) VALUES (?, ?) {conflict}", (file_id, key_id))

    def file_owner(self, file_id: str) -> str | None:
        rows = self._run("SELECT key_id FROM fiscus_batch_files WHERE id = ?", (file_id,))
        return rows[0][0] if rows else None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
