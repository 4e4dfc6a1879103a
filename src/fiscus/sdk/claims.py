"""One model call, one `CostEvent`, whatever the combination of adapters.

An adapter that only observes a framework's calls (LangChain's `FiscusCallbackHandler`, the Agents SDK's
`FiscusRunHooks`) and one that governs the client the framework calls (`fiscus.wrap`, `govern_chat_model`) would
both admit and settle the same call: 10 events for 5 calls. So, when the observer sees before a call that the
model's client is governed by the same governor, it does not admit the call itself; it leaves a *claim* — the
call's identity (a fingerprint of the model and the request's last turn) and the attribution it would have given
it — on the governor's board. The governed client's own call takes the claim (so the framework's agent name, run
tree and dimensions are on the event), applies every tier (a partial answer instead of an exception) and records
the call, once; the observer records nothing. A retry the framework makes takes the same claim and is its own
call and event, as it is billed.

A claim no governed call took — the framework went around the governed client, e.g. LangChain's structured-output
path — is recorded by the observer when the call ends, from the usage the framework reports, so no cost is lost.

The board is keyed by fingerprint rather than by context because the Agents SDK runs its hooks in tasks of their
own: nothing a hook sets in its context reaches the model call.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fiscus.attribution import Attribution
from fiscus.usage.wire import WireFormat

GOVERNED_METADATA = "fiscus_governed"  # LangChain metadata `govern_chat_model` sets: the governor's token


@dataclass(slots=True, eq=False)
class Claim:
    """A call an observer saw start and leaves to the governed client that will make it."""

    fingerprint: str
    attribution: Attribution
    taken: int = 0  # governed calls (a framework's retries included) that took it
    events: list[Any] = field(default_factory=list)


class ClaimBoard:
    """The claims open on one governor. Thread-safe; cheap when empty (the governed client's hot path)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, list[Claim]] = {}

    def __bool__(self) -> bool:
        return bool(self._open)

    def put(self, claim: Claim) -> None:
        with self._lock:
            self._open.setdefault(claim.fingerprint, []).append(claim)

    def take(self, fingerprint: str) -> Claim | None:
        """The oldest open claim for this call (it stays open until its observer ends it: retries take it too)."""
        with self._lock:
            claims = self._open.get(fingerprint)
            if not claims:
                return None
            claim = claims[0]
            claim.taken += 1
            return claim

    def drop(self, claim: Claim) -> None:
        with self._lock:
            claims = self._open.get(claim.fingerprint)
            if claims and claim in claims:
                claims.remove(claim)
                if not claims:
                    del self._open[claim.fingerprint]


_lock = threading.Lock()
_boards: dict[int, ClaimBoard] = {}


def board_of(governor: Any) -> ClaimBoard:
    key = id(governor)
    board = _boards.get(key)
    if board is None:
        with _lock:
            board = _boards.setdefault(key, ClaimBoard())
    return board


def governor_token(governor: Any) -> str:
    """What names a governor in a framework's metadata (compared, never parsed)."""
    return f"governor-{id(governor):x}"


def fingerprint(fmt: WireFormat, body: Mapping[str, Any]) -> str:
    """The identity an observer and the governed client both compute for one call: model and last turn."""
    from fiscus.sdk.request_text import last_content

    text, results = last_content(fmt, body)
    seen = "\x1f".join((str(body.get("model") or ""), text, *results))
    return hashlib.blake2b(seen.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def take(governor: Any, fmt: WireFormat, body: Mapping[str, Any]) -> Claim | None:
    """The claim an observer left for this call on `governor`, if any (None at once when none is open)."""
    board = _boards.get(id(governor))
    if not board:
        return None
    return board.take(fingerprint(fmt, body))


def claimed_attribution(own: Attribution, claim: Claim) -> Attribution:
    """The observer's dimensions over the governed client's own (the framework knows the running agent)."""
    return own.refine(**claim.attribution.to_dict())
