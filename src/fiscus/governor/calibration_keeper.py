"""Calibration kept beyond one process: what settled calls taught the estimates (`engine.calibration`) is written to
the budget store's backend (the same SQLite file, the same Redis server and prefix) every `every` settled calls and
on close, and read back when a governor starts. A new process, an SDK job started a minute ago or a restarted
gateway worker, reserves as tightly from its first call as the ones before it did. The periodic write runs on a
thread of its own: a settle only counts, it never waits on the store. Another process's shapes are
merged in, never over what this process learned itself. The record holds provider, model and agent names and
integer ratios: no prompt text, no keys."""

from __future__ import annotations

import logging
import threading

import orjson

from fiscus.engine.calibration import Calibration
from fiscus.stores.response_cache import ResponseCacheStore, open_response_cache

log = logging.getLogger("fiscus.governor")

NAMESPACE, KEY = "fiscus-calibration", "v1"
TTL_S = 30 * 86_400.0  # a shape nobody has called for a month is forgotten
EVERY = 50  # settled calls between writes


class CalibrationKeeper:
    def __init__(self, store: ResponseCacheStore, calibration: Calibration, *, every: int = EVERY) -> None:
        self.store = store
        self.calibration = calibration
        self.every = max(1, every)
        self._since = 0
        self._lock = threading.Lock()  # one write at a time
        self._writer: threading.Thread | None = None

    @classmethod
    def beside(cls, budget_store_url: str, calibration: Calibration, *, every: int = EVERY) -> CalibrationKeeper | None:
        """The keeper for the budget store at this URL; None for an in-process store (nothing outlives it)."""
        if budget_store_url.startswith("memory:"):
            return None
        try:
            return cls(open_response_cache(budget_store_url), calibration, every=every)
        except Exception as exc:  # calibration is an optimisation: never a reason not to start
            log.warning("fiscus: calibration is not kept across processes (%s)", exc)
            return None

    def load(self) -> int:
        """Adopt what was kept (shapes this process has not learned yet); how many shapes were taken."""
        stored = self._read()
        return self.calibration.adopt(stored) if stored is not None else 0

    def observed(self) -> None:
        """One settled call taught the calibration something: every `every` of them, a write off this thread."""
        self._since += 1
        if self._since < self.every or (self._writer is not None and self._writer.is_alive()):
            return
        self._since = 0
        self._writer = threading.Thread(target=self.save, name="fiscus-calibration", daemon=True)
        self._writer.start()

    def save(self) -> None:
        """Write what this process learned, with the shapes only other processes learned kept beside it."""
        with self._lock:
            merged = self.calibration.copy()
            stored = self._read()
            if stored is not None:
                merged.adopt(stored)
            try:
                self.store.put(NAMESPACE, KEY, orjson.dumps(merged.snapshot()), ttl_s=TTL_S, max_entries=1)
            except Exception as exc:
                log.info("fiscus: calibration not written (%s); the next write tries again", type(exc).__name__)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.join(timeout=5.0)
        self.save()
        self.store.close()

    def _read(self) -> object | None:
        try:
            raw = self.store.get(NAMESPACE, KEY)
            return orjson.loads(raw) if raw is not None else None
        except Exception as exc:  # unreadable or unreachable: start from nothing, as without a keeper
            log.info("fiscus: kept calibration not read (%s)", type(exc).__name__)
            return None
