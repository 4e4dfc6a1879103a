"""`OverrideBook`: grant, list and revoke overrides, and answer on the hot path which are in force for a key.

The gateway keeps the active overrides in memory and re-reads them from the store every `ttl_s` seconds (off the
event loop), so a grant or revocation made elsewhere (the CLI, another gateway) takes effect within that time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fiscus.overrides.model import Override, OverrideError, OverrideNotFoundError, new_override_id
from fiscus.overrides.store import OverrideStore

MAX_REASON_CHARS = 500


class OverrideBook:
    def __init__(
        self,
        store: OverrideStore,
        *,
        ttl_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._clock = clock
        self._now = now
        self._active: tuple[Override, ...] = ()
        self._fresh_until = float("-inf")

    def grant(
        self,
        *,
        reason: str,
        key_id: str | None = None,
        budget: str | None = None,
        until: datetime | None = None,
        lasting: timedelta | None = None,
        granted_by: str | None = None,
    ) -> Override:
        """A new override for a key or a budget (exactly one), ending at `until` or after `lasting`."""
        if (key_id is None) == (budget is None):
            raise OverrideError("an override is for a key (--key) or a budget (--budget): name exactly one")
        reason = " ".join(reason.split())
        if not reason:
            raise OverrideError("an override needs a reason (--reason): it is announced and kept with the grant")
        if len(reason) > MAX_REASON_CHARS:
            raise OverrideError(f"the reason is longer than {MAX_REASON_CHARS} characters")
        if (until is None) == (lasting is None):
            raise OverrideError("an override needs an end: --for DURATION or --until TIME (one of them)")
        now = self._now()
        expires = until if until is not None else now + (lasting or timedelta())
        if expires.tzinfo is None:
            raise OverrideError("--until needs a time zone, e.g. 2026-12-05T18:00Z")
        if expires <= now:
            raise OverrideError(f"the override would end at {expires.isoformat()}, which is not in the future")
        override = Override(
            id=new_override_id(),
            reason=reason,
            created_at=now,
            expires_at=expires,
            key_id=key_id,
            budget=budget,
            granted_by=granted_by,
        )
        self.store.add(override)
        self._fresh_until = float("-inf")
        return override

    def revoke(self, override_id: str) -> Override:
        override = self.store.revoke(override_id, self._now())
        if override is None:
            raise OverrideNotFoundError(f"no override with id {override_id!r} (see `fiscus overrides list`)")
        self._fresh_until = float("-inf")
        return override

    def list(self, *, every: bool = False) -> list[Override]:
        """The overrides in force now; `every`: revoked and expired ones too."""
        return self.store.list() if every else self.store.list(active_at=self._now())

    # -- the hot path ---------------------------------------------------------------------------------------

    def grants_for(self, key_id: str) -> tuple[tuple[str, str], ...]:
        """What the engine gets for a call with this key: (budget or "*", override id) per override in force."""
        if self._clock() >= self._fresh_until:
            self._refresh(self.store.list(active_at=self._now()))
        return self._grants(key_id)

    async def agrants_for(self, key_id: str) -> tuple[tuple[str, str], ...]:
        """`grants_for` for an event loop: a stale copy is re-read in a worker thread."""
        if self._clock() >= self._fresh_until:
            self._refresh(await asyncio.to_thread(self.store.list, active_at=self._now()))
        return self._grants(key_id)

    def _refresh(self, active: list[Override]) -> None:
        self._active = tuple(active)
        self._fresh_until = self._clock() + self.ttl_s

    def _grants(self, key_id: str) -> tuple[tuple[str, str], ...]:
        if not self._active:
            return ()
        now = self._now()  # an override that ends between two refreshes ends on time
        return tuple(o.grant() for o in self._active if (o.key_id in (None, key_id)) and o.active(now))
