"""One way to open an SQLite file that several threads and processes share: WAL, a busy timeout, and the
switch to WAL retried while another connection holds the file.

Why the retry: on a new file, turning WAL on needs the file to itself, and SQLite answers "database is
locked" at once — without waiting out the busy timeout — when another connection opens it at the same moment
(several gateway workers, or threads, starting together)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path


def connect_wal(path: str | Path, *, busy_timeout_ms: int, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """A connection in autocommit mode (callers issue their own `BEGIN IMMEDIATE`), shareable across threads
    under the caller's lock. Raises `sqlite3.Error` when the file stays locked past the busy timeout."""
    conn = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        deadline = time.monotonic() + busy_timeout_ms / 1000
        pause = 0.005
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.1)
        conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
    except BaseException:
        conn.close()
        raise
    return conn
