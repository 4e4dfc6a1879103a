"""Loop detection shared by every gateway worker: each conversation's (and each key's exchange) detector state
kept in the breaker state's backend, so a loop whose calls land on different workers is seen whole.

A conversation's state is the `LoopDetector`'s own (`state()` / `restore()`: bounded — the recent sketches,
digests and counters), its stop message and its pending tokens, stored as one versioned record. A call runs
the single-process detector on the worker's last copy and writes the result back only if the record is still
the version that copy was (compare and swap: one round trip for the call's conversation and its key's
exchange together); when another worker moved it meanwhile, the swap answers the newer records instead and the
call runs again on those (a second round trip). So the decisions are the detector's,
made on every call of the conversation in order, whichever worker serves it. Records expire after `ttl_s`
idle, so conversations nobody continues vanish.

Text stays out of the store unless `keep_text` (the operator's `guards.postmortem_text`): the recent inputs
and exchanged messages are kept as fingerprints, which no decision reads.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from fiscus.backends import Backend, Backends
from fiscus.errors import StoreError
from fiscus.guards.loops import LoopConfig, LoopDetector
from fiscus.guards.state import ACCEPTED

log = logging.getLogger("fiscus.guards")
T = TypeVar("T")
Held = tuple[int, bytes | None]
MAX_HELD = 10_000  # conversations a worker keeps its copy of (ids come from clients)
_TRIES = 16  # swaps one call makes before it gives up sharing that call (only under heavy contention)


class LoopStateStore(ABC):
    """Versioned records by key, each expiring `ttl_s` after its last write. Failures raise `StoreError`."""

    url: str = ""

    @abstractmethod
    def swap(self, records: list[tuple[str, int, bytes]], ttl_s: float) -> dict[str, Held] | None:
        """Store each (key, version, data) as version `version + 1` if every held record is at its `version`
        (0: none held), all or none; None when stored, else the held (version, data) of every key — (0, None)
        where there is none."""

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release connections."""


class MemoryLoopState(LoopStateStore):
    """Records in this process; share one instance between gateways to share their loops."""

    url = "memory://"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._records: dict[str, tuple[int, bytes, float]] = {}

    def swap(self, records: list[tuple[str, int, bytes]], ttl_s: float) -> dict[str, Held] | None:
        now = self._clock()
        with self._lock:
            held: dict[str, Held] = {}
            for key, _, _ in records:
                found = self._records.get(key)
                held[key] = (found[0], found[1]) if found is not None and found[2] > now else (0, None)
            if any(held[key][0] != version for key, version, _ in records):
                return held
            for key, version, data in records:
                self._records[key] = (version + 1, data, now + ttl_s)
            if len(self._records) > 4 * MAX_HELD:  # drop the expired ones now and then
                self._records = {k: r for k, r in self._records.items() if r[2] > now}
            return None


LOOP_STATES: Backends[LoopStateStore] = Backends(
    "loop state",
    {
        "memory": Backend("fiscus.guards.loop_state:MemoryLoopState", "nothing"),
        "sqlite": Backend("fiscus.stores.loop_state_sqlite:SqliteLoopState", "path"),
        "redis": Backend("fiscus.stores.loop_state_redis:RedisLoopState.from_url", "url"),
        "rediss": Backend("fiscus.stores.loop_state_redis:RedisLoopState.from_url", "url"),
    },
    accepted=ACCEPTED,
)


def open_loop_state(url: str, **options: Any) -> LoopStateStore:
    """A loop state store by URL: the same URL as the breaker state (`fiscus.guards.state`)."""
    return LOOP_STATES.open(url, **options)


@dataclass(slots=True)
class Conversation:
    """What the gateway keeps per conversation (or per key's exchange)."""

    detector: LoopDetector
    tokens: int = 0  # used by its calls since its last request
    stopped: str | None = None  # the loop message once it was stopped


class LoopStates:
    """The conversations' loop state: in this process only (`store=None`), or shared through `store`."""

    def __init__(
        self,
        config: LoopConfig,
        store: LoopStateStore | None = None,
        *,
        ttl_s: float = 3_600.0,
        keep_text: bool = False,
    ) -> None:
        self.config = config
        self.store = store
        self.ttl_s = ttl_s
        self.keep_text = keep_text
        self._lock = threading.Lock()
        self._held: OrderedDict[str, tuple[int, Conversation]] = OrderedDict()

    def run(self, key: str, step: Callable[[Conversation], T]) -> T:
        """`step` applied to the conversation `key`, in order with every other worker's steps of it. `step`
        must only change the conversation: it may run more than once (on a newer copy) before one is kept."""
        return self.run_all([key], lambda conversations: step(conversations[0]))

    def run_all(self, keys: list[str], step: Callable[[list[Conversation]], T]) -> T:
        """`step` applied to the conversations `keys` together (a call's conversation and its key's exchange):
        their records are swapped in one round trip, all or none."""
        with self._lock:
            held = [self._held.get(key) or (0, Conversation(LoopDetector(self.config))) for key in keys]
        versions = [version for version, _ in held]
        conversations = [conversation for _, conversation in held]
        if self.store is None:
            result = step(conversations)
            self._keep(keys, versions, conversations)
            return result
        names = [_store_key(key) for key in keys]
        for _ in range(_TRIES):
            result = step(conversations)
            records = [(n, v, self._encode(c)) for n, v, c in zip(names, versions, conversations, strict=True)]
            try:
                found = self.store.swap(records, self.ttl_s)
            except StoreError as exc:  # judged on this worker's copy alone until the store answers again
                log.warning("fiscus: loop state not shared (%s)", exc)
                self._keep(keys, versions, conversations)
                return result
            if found is None:
                self._keep(keys, [v + 1 for v in versions], conversations)
                return result
            versions = [found[n][0] for n in names]
            conversations = [self._decode(found[n][1]) for n in names]
        log.warning("fiscus: loop state of a conversation contended, this call judged on the newest copy read")
        return step(conversations)

    def peek(self, key: str) -> Conversation | None:
        """This worker's latest copy (for a post-mortem); None when it has none."""
        with self._lock:
            held = self._held.get(key)
        return held[1] if held is not None else None

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    def _keep(self, keys: list[str], versions: list[int], conversations: list[Conversation]) -> None:
        with self._lock:
            for key, version, conversation in zip(keys, versions, conversations, strict=True):
                self._held[key] = (version, conversation)
                self._held.move_to_end(key)
            while len(self._held) > MAX_HELD:
                self._held.popitem(last=False)

    def _encode(self, conversation: Conversation) -> bytes:
        state = conversation.detector.state()
        if not self.keep_text:
            state["inputs"] = [_fingerprint(text) for text in state["inputs"]]
            state["exchange"] = [[agent, _fingerprint(text), shape] for agent, text, shape in state["exchange"]]
        return orjson.dumps({"d": state, "t": conversation.tokens, "s": conversation.stopped})

    def _decode(self, data: bytes | None) -> Conversation:
        if data is None:  # none held (never written, or expired)
            return Conversation(LoopDetector(self.config))
        record = orjson.loads(data)
        return Conversation(LoopDetector.restore(self.config, record["d"]), int(record["t"]), record["s"])


def _store_key(key: str) -> str:
    # Conversation ids come from clients and key ids name credentials: the store sees a digest only.
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _fingerprint(text: str) -> str:
    if text.startswith("sha256:"):
        return text
    return f"sha256:{hashlib.sha256(text.encode('utf-8', 'replace')).hexdigest()[:16]}/{len(text)}"
