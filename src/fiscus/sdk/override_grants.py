"""Overrides on the SDK path, exactly as on the gateway.

An override granted with `fiscus overrides grant` (or `POST /admin/overrides`) is kept beside the virtual keys —
the config's `keys:` database. The SDK reads the same store through the same `OverrideBook` (re-read every 2 s,
so a grant or revocation made elsewhere counts within that time), hands `grants_for(key)` to the engine as the
call's `CallRequest.overrides`, and the engine lets the call through every refusal the policy marks overridable
(the gate passes the guard refusals `guards.overridable` names for a key's override, `CallRequest.passed`).
The ledger event names the override, and its first use is announced once across every gateway and SDK process
(the same claim in the budget store). A budget override covers every caller; a key override covers the calls of
a client wrapped with that key's id (`fiscus.wrap(..., key_id="vk_…")`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fiscus.events.override_events import OverrideUsed
from fiscus.governor import Admission
from fiscus.governor.steps import Steps
from fiscus.overrides import OverrideBook, open_override_store

_CLAIM_S = 90 * 86_400.0  # the gateway's: longer than any override is granted for
_RECHECK_S = 2.0


class ConfiguredOverrides:
    """The override book on a config's `keys:` database, opened once that database exists (a SQLite file is
    created by the first grant, so an SDK process that starts before it still sees the grants made later)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._book: OverrideBook | None = None
        self._next_look = float("-inf")

    def _open(self) -> OverrideBook | None:
        if self._book is None and time.monotonic() >= self._next_look:
            self._next_look = time.monotonic() + _RECHECK_S
            if self.url.startswith("sqlite:///") and not Path(self.url.removeprefix("sqlite:///")).exists():
                return None
            self._book = OverrideBook(open_override_store(self.url))
        return self._book

    def grants_for(self, key_id: str) -> tuple[tuple[str, str], ...]:
        book = self._open()
        return book.grants_for(key_id) if book is not None else ()

    def close(self) -> None:
        if self._book is not None:
            self._book.store.close()


def grants(overrides: Any | None, key_id: str | None) -> tuple[tuple[str, str], ...]:
    """What the engine gets for a call with this key (budget overrides only without one)."""
    if overrides is None:
        return ()
    return tuple(overrides.grants_for(key_id or ""))


def announce_steps(governor: Any, admission: Admission) -> Steps[None]:
    """The first call an override lets through is announced, once per override across every process."""
    decision, who = admission.decision, admission.request.attribution
    announcer = getattr(governor, "announcer", None)
    if announcer is None or not decision.override_ids:
        return
    lifted = tuple(dict.fromkeys(i.removeprefix("b:").split("|", 1)[0] for i in decision.overridden))
    now = governor.now()
    for override_id in decision.override_ids:
        first = yield from announcer.once_steps(
            f"f:override:{override_id}", expires_at=now + _CLAIM_S, reservation_id=f"{admission.event_id}:o", now=now
        )
        if first:
            guards = tuple(what for what, by in admission.request.passed if by == override_id)
            used = OverrideUsed(override_id, lifted, key_id=who.api_key, agent=who.agent, team=who.team, guards=guards)
            governor.on_event(used)
