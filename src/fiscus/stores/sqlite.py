"""`SqliteStore` (sqlite:///path): budget counters shared by several processes on one host.

Each operation is one `BEGIN IMMEDIATE` transaction, which takes SQLite's write lock up front: the check and
the reserve cannot interleave with another process's, and a waiting writer sleeps in `busy_timeout` rather
than failing. WAL lets readers proceed meanwhile. Within a process one connection is shared under a lock
(processes must be started with *spawn* or open their own store: a connection does not survive `fork`).
The async methods are the sync ones run inline: an operation takes well under a millisecond, but while
another process holds the write lock the event loop waits in `busy_timeout` too.

Loss detection: the marker is a row of the counters table itself (key `#epoch`: the epoch in `sn`, the time a
loss was noticed in `st`), so emptying the table takes it too; a reserve reads it with the counters it checks. A
file deleted or replaced under a running process is noticed within `FILE_CHECK_S` (its inode changes): the store
opens the file now at the path, which has no marker.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from fiscus.engine.ports import Amounts, Counter, Refusal, Reservation, ReserveLine, SettleOutcome
from fiscus.errors import StoreError
from fiscus.sqlite_wal import connect_wal
from fiscus.stores.base import NOTICED, BudgetStore, OutboxEntry, Restored, lost_error, new_epoch, require_keys
from fiscus.stores.group_commit import GroupCommit
from fiscus.stores.memory import DEFAULT_SETTLED_TTL

DEFAULT_COUNTER_TTL_MARGIN = 86400.0  # a counter is kept this long past its line's `expires_at`
REAP_BATCH = 100  # expired leases reaped at the start of reserve/settle; `reap` takes them all
_SettleItem = tuple[Reservation, Amounts, float, bytes | None]  # an async settle waiting for its group
MARKER = "#epoch"  # the marker row's key: no counter key starts with '#'
_DELETE_CHUNK = 500  # drained outbox ids per DELETE (well under SQLite's bound on parameters)
FILE_CHECK_S = 0.25  # how often the store looks whether its file was deleted or replaced

_SCHEMA = """
CREATE TABLE IF NOT EXISTS fiscus_counters (
    key TEXT PRIMARY KEY,
    sn INTEGER NOT NULL DEFAULT 0, st INTEGER NOT NULL DEFAULT 0, sr INTEGER NOT NULL DEFAULT 0,
    rn INTEGER NOT NULL DEFAULT 0, rt INTEGER NOT NULL DEFAULT 0, rr INTEGER NOT NULL DEFAULT 0,
    expires_at REAL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fiscus_reservations (
    id TEXT PRIMARY KEY,
    lease_expires_at REAL NOT NULL,
    lines TEXT NOT NULL  -- JSON [[keys[0], nanos, tokens, requests], ...]: what to release
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fiscus_reservations_lease ON fiscus_reservations (lease_expires_at);
CREATE TABLE IF NOT EXISTS fiscus_settled (id TEXT PRIMARY KEY, settled_at REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fiscus_settled_at ON fiscus_settled (settled_at);
CREATE TABLE IF NOT EXISTS fiscus_outbox (
    seq INTEGER PRIMARY KEY,  -- drain order
    id TEXT NOT NULL UNIQUE,
    record BLOB NOT NULL  -- the call's CostEvent, JSON: the writer moves it to the ledger, then deletes it
);
CREATE TABLE IF NOT EXISTS fiscus_lost (id TEXT PRIMARY KEY) WITHOUT ROWID;  -- settled while the marker was gone
"""

_ADD = """
INSERT INTO fiscus_counters (key, sn, st, sr, rn, rt, rr, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    sn = sn + excluded.sn, st = st + excluded.st, sr = sr + excluded.sr,
    rn = rn + excluded.rn, rt = rt + excluded.rt, rr = rr + excluded.rr,
    expires_at = max(coalesce(expires_at, excluded.expires_at), coalesce(excluded.expires_at, expires_at))
"""


class SqliteStore(BudgetStore):
    durable = True  # committed transactions survive the process (WAL); synchronous=NORMAL risks only an OS crash

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout_ms: int = 10_000,
        synchronous: str = "NORMAL",
        settled_ttl: float = DEFAULT_SETTLED_TTL,
        counter_ttl_margin: float = DEFAULT_COUNTER_TTL_MARGIN,
        guarded: bool = False,
    ) -> None:
        self.guarded = guarded
        self._path = str(path)
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise StoreError(f"SQLite store: synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}")
        self._settled_ttl = settled_ttl
        self._margin = counter_ttl_margin
        self._lock = threading.Lock()
        self._settles = 0
        self._groups: GroupCommit[_SettleItem, str] = GroupCommit(self._settle_group)
        self._busy_timeout_ms, self._synchronous = int(busy_timeout_ms), synchronous
        self._file: tuple[int, int] | None = None  # (device, inode) of the file opened
        self._next_check = 0.0
        self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            if self._path != ":memory:":
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            db = connect_wal(self._path, busy_timeout_ms=self._busy_timeout_ms, synchronous=self._synchronous)
            db.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
            if self._path != ":memory:":
                stat = os.stat(self._path)
                self._file = (stat.st_dev, stat.st_ino)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"SQLite store {self._path}: {exc}") from exc
        self._next_check = time.monotonic() + FILE_CHECK_S
        return db

    def _same_file(self) -> bool:
        try:
            stat = os.stat(self._path)
        except OSError:
            return False
        return (stat.st_dev, stat.st_ino) == self._file

    def _reopen(self) -> None:
        """Open the file now at the path. Records still in the old file's outbox go with us: a call's record is never
        dropped (its counters went with the file; the rebuild finds its spend in the ledger)."""
        try:
            pending = self._db.execute("SELECT id, record FROM fiscus_outbox ORDER BY seq").fetchall()
        except sqlite3.Error:
            pending = []
        self._db.close()
        self._db = self._open()
        if pending:
            try:  # each row on its own: the insert is idempotent
                self._db.executemany("INSERT OR IGNORE INTO fiscus_outbox (id, record) VALUES (?, ?)", pending)
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self._path}: {exc}") from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._file is not None and time.monotonic() >= self._next_check:
                self._next_check = time.monotonic() + FILE_CHECK_S
                if not self._same_file():  # deleted or replaced: what this connection holds is no longer the store
                    self._reopen()
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self._path}: {exc}") from exc

    # -- operations -----------------------------------------------------------------------------------

    def reserve(
        self, reservation_id: str, lines: tuple[ReserveLine, ...], *, now: float, lease_seconds: float
    ) -> Reservation | Refusal:
        require_keys(lines)
        with self._transaction() as db:
            expired, lease, settled, used = self._reserve_read(db, reservation_id, lines, now)
            if expired:  # released first, then the counters read again: they changed
                for rid, record in expired:
                    self._release(db, rid, record)
                used = self._used(db, {MARKER, *(key for line in lines for key in line.keys)})
            if lease is not None and lease > now:  # a retried reserve: the first one stands
                return Reservation(reservation_id, lines, lease)
            if settled:
                raise StoreError(f"reservation id {reservation_id!r} was already settled; use a new id")
            mark = used.get(MARKER)
            if mark is None or mark.tokens:
                if self.guarded:
                    raise lost_error(self._path)
                self._write_marker(db, new_epoch())
            pending: dict[str, Amounts] = {}  # earlier lines of this request that land on a key
            for line in lines:
                total = Amounts()
                for key in line.keys:
                    total = total + used.get(key, _ZERO) + pending.get(key, _ZERO)
                if not line.limits.admits(total, line.amount):
                    return Refusal(line.budget, total, line.limits)
                pending[line.keys[0]] = pending.get(line.keys[0], _ZERO) + line.amount
            db.executemany(
                _ADD,
                [(line.keys[0], 0, 0, 0, *_triple(line.amount), line.expires_at) for line in lines],
            )
            expires = now + lease_seconds
            record = json.dumps([[line.keys[0], *_triple(line.amount)] for line in lines], separators=(",", ":"))
            db.execute(
                "INSERT OR REPLACE INTO fiscus_reservations (id, lease_expires_at, lines) VALUES (?, ?, ?)",
                (reservation_id, expires, record),
            )
            return Reservation(reservation_id, lines, expires)

    def settle(self, reservation: Reservation, actual: Amounts, *, now: float, record: bytes | None = None) -> str:
        require_keys(reservation.lines)
        with self._transaction() as db:
            return self._settle_in(db, reservation, actual, now, record, reap=True)

    async def asettle(
        self, reservation: Reservation, actual: Amounts, *, now: float, record: bytes | None = None
    ) -> str:
        """Settles of one event-loop turn share a transaction (group commit); each returns once it is committed."""
        require_keys(reservation.lines)
        return await self._groups.submit((reservation, actual, now, record))

    def _settle_group(self, items: list[_SettleItem]) -> list[str | Exception]:
        if len(items) > 1:
            try:
                with self._transaction() as db:
                    self._reap(db, items[0][2], REAP_BATCH)
                    return [self._settle_in(db, *item) for item in items]
            except StoreError:
                pass  # rolled back whole: each settle alone, so one failure fails only its own caller
        results: list[str | Exception] = []
        for reservation, actual, now, record in items:
            try:
                results.append(self.settle(reservation, actual, now=now, record=record))
            except StoreError as exc:
                results.append(exc)
        return results

    def _settle_in(
        self,
        db: sqlite3.Connection,
        reservation: Reservation,
        actual: Amounts,
        now: float,
        record: bytes | None,
        *,
        reap: bool = False,
    ) -> str:
        rid = reservation.id
        settled, row, intact = self._settle_read(db, rid, now, reap)
        if settled:
            return SettleOutcome.DUPLICATE
        live = row is not None and row[0] > now
        # The spend and, for a reservation still held (even expired beyond this call's reap batch: settle is then
        # LATE), its release: one upsert a counter, not one to release and one to spend.
        spend: dict[str, list[int | float | None]] = {}
        n, t, r = actual.nanos, actual.tokens, actual.requests
        for line in reservation.lines:
            cell = spend.get(line.keys[0])
            if cell is None:
                spend[line.keys[0]] = [n, t, r, 0, 0, 0, line.expires_at]
            else:
                cell[0], cell[1], cell[2] = cell[0] + n, cell[1] + t, cell[2] + r  # type: ignore[operator]
                cell[6] = _later(cell[6], line.expires_at)  # type: ignore[arg-type]
        if row is not None:
            for key, held_n, held_t, held_r in json.loads(row[1]):
                cell = spend.get(key)
                if cell is None:
                    cell = spend[key] = [0, 0, 0, 0, 0, 0, None]
                cell[3], cell[4], cell[5] = cell[3] - held_n, cell[4] - held_t, cell[5] - held_r  # type: ignore[operator]
            db.execute("DELETE FROM fiscus_reservations WHERE id = ?", (rid,))
        db.executemany(_ADD, [(key, *cell) for key, cell in spend.items()])
        db.execute("INSERT INTO fiscus_settled (id, settled_at) VALUES (?, ?)", (rid, now))
        if not intact:
            db.execute("INSERT OR IGNORE INTO fiscus_lost (id) VALUES (?)", (rid,))
        if record is not None:
            db.execute("INSERT OR IGNORE INTO fiscus_outbox (id, record) VALUES (?, ?)", (rid, record))
        self._settles += 1
        if self._settles % 1000 == 0:
            db.execute("DELETE FROM fiscus_settled WHERE settled_at < ?", (now - self._settled_ttl,))
        return SettleOutcome.SETTLED if live else SettleOutcome.LATE

    def record(self, entry_id: str, record: bytes) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO fiscus_outbox (id, record) VALUES (?, ?)", (entry_id, record))

    def marker(self) -> str | None:
        with self._transaction() as db:
            row = db.execute("SELECT sn, st FROM fiscus_counters WHERE key = ?", (MARKER,)).fetchone()
        if row is None:
            return None
        return f"{NOTICED}{row[1]}" if row[1] else str(row[0])

    def claim_loss(self, *, now: float) -> bool:
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO fiscus_counters (key, sn, st) VALUES (?, 0, ?)", (MARKER, max(1, int(now)))
            )
            return cursor.rowcount == 1

    def lost_ids(self) -> set[str]:
        with self._transaction() as db:
            return {row[0] for row in db.execute("SELECT id FROM fiscus_lost")}

    def restore(self, spent: Mapping[str, Restored], *, epoch: str, now: float) -> bool:
        with self._transaction() as db:
            if self._intact(db):
                return False
            db.executemany(
                _ADD,
                [(key, *_triple(amounts), 0, 0, 0, expires_at) for key, (amounts, expires_at) in spent.items()],
            )
            self._write_marker(db, epoch)
            db.execute("DELETE FROM fiscus_lost")
            return True

    @staticmethod
    def _intact(db: sqlite3.Connection) -> bool:
        row = db.execute("SELECT st FROM fiscus_counters WHERE key = ?", (MARKER,)).fetchone()
        return row is not None and not row[0]

    @staticmethod
    def _write_marker(db: sqlite3.Connection, epoch: str) -> None:
        stamp = int(epoch.split("-", 1)[0]) if epoch.split("-", 1)[0].isdigit() else int(time.time() * 1000)
        db.execute("INSERT OR REPLACE INTO fiscus_counters (key, sn, st) VALUES (?, ?, 0)", (MARKER, stamp))

    def outbox(self, limit: int) -> list[OutboxEntry]:
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT id, record FROM fiscus_outbox ORDER BY seq LIMIT ?", (limit,)
                ).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self._path}: {exc}") from exc
        return [OutboxEntry(rid, bytes(rec)) for rid, rec in rows]

    def outbox_done(self, entries: list[OutboxEntry]) -> None:
        if entries:
            with self._transaction() as db:
                for start in range(0, len(entries), _DELETE_CHUNK):  # one statement per chunk, not one per row
                    chunk = [entry.id for entry in entries[start : start + _DELETE_CHUNK]]
                    db.execute(f"DELETE FROM fiscus_outbox WHERE id IN ({','.join('?' * len(chunk))})", chunk)

    def renew(self, reservation: Reservation, *, now: float, lease_seconds: float) -> bool:
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE fiscus_reservations SET lease_expires_at = max(lease_expires_at, ?) "
                "WHERE id = ? AND lease_expires_at > ?",
                (now + lease_seconds, reservation.id, now),
            )
            return cursor.rowcount == 1

    def reap(self, *, now: float) -> int:
        with self._transaction() as db:
            reaped = self._reap(db, now, None)
            db.execute(
                "DELETE FROM fiscus_counters WHERE expires_at IS NOT NULL AND expires_at < ? "
                "AND rn = 0 AND rt = 0 AND rr = 0",
                (now - self._margin,),
            )
            db.execute("DELETE FROM fiscus_settled WHERE settled_at < ?", (now - self._settled_ttl,))
            return reaped

    def counters(self, keys: tuple[str, ...], *, now: float) -> dict[str, Counter]:
        with self._transaction() as db:
            self._reap(db, now, None)
            marks = ",".join("?" * len(keys))
            rows = db.execute(
                f"SELECT key, sn, st, sr, rn, rt, rr FROM fiscus_counters WHERE key IN ({marks})", tuple(keys)
            ).fetchall()
        found = {row[0]: Counter(Amounts(row[1], row[2], row[3]), Amounts(row[4], row[5], row[6])) for row in rows}
        return {key: found.get(key, Counter()) for key in keys}

    def keys_with_prefix(self, prefix: str, *, now: float) -> list[str]:
        """A range scan of the counters' primary key; counters past `expires_at` + margin that hold no
        reservation are left out (the next `reap` deletes them)."""
        upper = _successor(prefix)
        where = "key >= ? AND key <> '#epoch'" + (" AND key < ?" if upper is not None else "")
        bounds = (prefix, upper) if upper is not None else (prefix,)
        with self._transaction() as db:  # reaps expired leases first, as `counters` does
            self._reap(db, now, None)
            rows = db.execute(
                f"SELECT key FROM fiscus_counters WHERE {where} AND (expires_at IS NULL OR expires_at >= ? "
                "OR rn <> 0 OR rt <> 0 OR rr <> 0) ORDER BY key",
                (*bounds, now - self._margin),
            ).fetchall()
        return [row[0] for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- internals (transaction open) -----------------------------------------------------------------

    @staticmethod
    def _reserve_read(
        db: sqlite3.Connection, rid: str, lines: tuple[ReserveLine, ...], now: float
    ) -> tuple[list[tuple[str, str]], float | None, bool, dict[str, Amounts]]:
        """In one statement: the expired leases to reap (a batch), this id's lease if it holds one, whether it was
        settled, and what the lines' counters (and the marker row) have spent and reserved."""
        keys = (MARKER, *{key for line in lines for key in line.keys} - {MARKER})
        rows = db.execute(
            "SELECT 0, id, lines, 0, 0 FROM (SELECT id, lines FROM fiscus_reservations WHERE lease_expires_at <= ? "
            "ORDER BY lease_expires_at LIMIT ?) "
            "UNION ALL SELECT 1, lease_expires_at, 0, 0, 0 FROM fiscus_reservations WHERE id = ? "
            "UNION ALL SELECT 2, 0, 0, 0, 0 FROM fiscus_settled WHERE id = ? "
            "UNION ALL SELECT 3, key, sn + rn, st + rt, sr + rr FROM fiscus_counters "
            f"WHERE key IN ({','.join('?' * len(keys))})",
            (now, REAP_BATCH, rid, rid, *keys),
        ).fetchall()
        expired: list[tuple[str, str]] = []
        lease: float | None = None
        settled = False
        used: dict[str, Amounts] = {}
        for kind, a, b, c, d in rows:
            if kind == 3:
                used[a] = Amounts(b, c, d)
            elif kind == 0:
                expired.append((a, b))
            elif kind == 1:
                lease = a
            else:
                settled = True
        return expired, lease, settled, used

    def _settle_read(
        self, db: sqlite3.Connection, rid: str, now: float, reap: bool
    ) -> tuple[bool, tuple[float, str] | None, bool]:
        """In one statement: whether `rid` was settled, its reservation row, whether the marker says the store is
        intact, and with `reap` a batch of expired leases, which are released before the rest is read again."""
        head = (
            "SELECT 0, id, lines FROM (SELECT id, lines FROM fiscus_reservations WHERE lease_expires_at <= ? "
            "ORDER BY lease_expires_at LIMIT ?) UNION ALL "
            if reap
            else ""
        )
        rows = db.execute(
            head + "SELECT 1, 0, 0 FROM fiscus_settled WHERE id = ? "
            "UNION ALL SELECT 2, lease_expires_at, lines FROM fiscus_reservations WHERE id = ? "
            "UNION ALL SELECT 3, st, 0 FROM fiscus_counters WHERE key = ?",
            ((now, REAP_BATCH) if reap else ()) + (rid, rid, MARKER),
        ).fetchall()
        expired = [(expired_id, record) for kind, expired_id, record in rows if kind == 0] if reap else None
        if expired:  # released first: one of them may be this one, so the rest is read again after
            for expired_id, record in expired:
                self._release(db, expired_id, record)
            return self._settle_read(db, rid, now, False)
        settled, row, intact = False, None, False
        for kind, a, b in rows:
            if kind == 1:
                settled = True
            elif kind == 2:
                row = (a, b)
            else:
                intact = not a
        return settled, row, intact

    @staticmethod
    def _used(db: sqlite3.Connection, keys: set[str]) -> dict[str, Amounts]:
        marks = ",".join("?" * len(keys))
        rows = db.execute(
            f"SELECT key, sn + rn, st + rt, sr + rr FROM fiscus_counters WHERE key IN ({marks})", tuple(keys)
        ).fetchall()
        return {row[0]: Amounts(row[1], row[2], row[3]) for row in rows}

    def _reap(self, db: sqlite3.Connection, now: float, limit: int | None) -> int:
        rows = db.execute(
            "SELECT id, lines FROM fiscus_reservations WHERE lease_expires_at <= ? ORDER BY lease_expires_at LIMIT ?",
            (now, -1 if limit is None else limit),
        ).fetchall()
        for rid, record in rows:
            self._release(db, rid, record)
        return len(rows)

    @staticmethod
    def _release(db: sqlite3.Connection, rid: str, record: str) -> None:
        db.executemany(_ADD, [(key, 0, 0, 0, -n, -t, -r, None) for key, n, t, r in json.loads(record)])
        db.execute("DELETE FROM fiscus_reservations WHERE id = ?", (rid,))


_ZERO = Amounts()
_MAX_CHAR = 0x10FFFF


def _successor(prefix: str) -> str | None:
    """The least string above every string starting with `prefix` (None: no bound). SQLite compares TEXT as
    UTF-8 bytes, which orders like code points, so bumping the last code point that can grow is enough."""
    chars = list(prefix)
    while chars and ord(chars[-1]) == _MAX_CHAR:
        chars.pop()
    if not chars:
        return None
    code = ord(chars[-1]) + 1
    chars[-1] = chr(0xE000 if 0xD800 <= code <= 0xDFFF else code)  # surrogates are not valid in UTF-8
    return "".join(chars)


def _later(a: float | None, b: float | None) -> float | None:
    """The later of two expiries, None taken as no expiry given (as the counters' upsert takes it)."""
    if a is None:
        return b
    return a if b is None or a >= b else b


def _triple(amount: Amounts) -> tuple[int, int, int]:
    return amount.nanos, amount.tokens, amount.requests
