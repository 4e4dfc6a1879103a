"""`KeyRing`: create, verify, list and revoke virtual keys; verification is cached for the hot path."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

from fiscus.attribution import Attribution
from fiscus.errors import FiscusError
from fiscus.keys.claims import KeyClaims
from fiscus.keys.model import (
    DISPLAY_CHARS,
    KeyNotFoundError,
    VirtualKey,
    generate_key,
    hash_key,
    looks_like_key,
    new_key_id,
)
from fiscus.keys.store import KeyStore


class KeyRing:
    """Verification hashes the presented key (one SHA-256) and looks the hash up in an in-memory cache; a miss
    reads the store. Entries live `ttl_s` seconds, so a revocation made elsewhere (another gateway, the CLI)
    takes effect within that time; unknown keys are remembered `negative_ttl_s`, so a key created elsewhere
    works within that time. The cache is bounded (oldest out first) so a flood of bogus keys cannot grow it."""

    def __init__(
        self,
        store: KeyStore,
        *,
        ttl_s: float = 5.0,
        negative_ttl_s: float = 1.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.negative_ttl_s = negative_ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._now = now
        self._cache: OrderedDict[str, tuple[float, VirtualKey | None]] = OrderedDict()

    def create(
        self,
        *,
        agent: str,
        team: str,
        environment: str,
        workflow: str | None = None,
        tenant: str | None = None,
        user: str | None = None,
        organization: str | None = None,
        claims: KeyClaims | None = None,
        name: str | None = None,
    ) -> tuple[str, VirtualKey]:
        """A new key: returns (the secret — show it once, it is not stored —, the stored record). `claims`: what
        its requests may claim through headers (default: nothing beyond its own agent and team)."""
        for label, value in (("agent", agent), ("team", team), ("env", environment)):
            if not value or not value.strip():
                raise FiscusError(f"a virtual key needs a non-empty {label}")
        secret = generate_key()
        key_id = new_key_id()
        key = VirtualKey(
            id=key_id,
            key_hash=hash_key(secret),
            prefix=secret[:DISPLAY_CHARS],
            attribution=Attribution(
                organization=organization,
                team=team,
                agent=agent,
                workflow=workflow,
                tenant=tenant,
                user=user,
                environment=environment,
                api_key=key_id,
            ),
            created_at=self._now(),
            name=name,
            claims=claims or KeyClaims(),
        )
        self.store.add(key)
        return secret, key

    def verify(self, presented: str) -> VirtualKey | None:
        """The live key for this secret, or None (unknown, malformed or revoked)."""
        if not looks_like_key(presented):
            return None
        digest = hash_key(presented)
        now = self._clock()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            key = cached[1]
        else:
            key = self.store.find(digest)
            self._remember(digest, key, now)
        return self._live(key, digest)

    async def averify(self, presented: str) -> VirtualKey | None:
        """`verify` for an event loop: cache hits answer at once, misses read the store in a worker thread."""
        if not looks_like_key(presented):
            return None
        digest = hash_key(presented)
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > self._clock():
            return self._live(cached[1], digest)
        key = await asyncio.to_thread(self.store.find, digest)
        self._remember(digest, key, self._clock())
        return self._live(key, digest)

    @staticmethod
    def _live(key: VirtualKey | None, digest: str) -> VirtualKey | None:
        if key is None or key.revoked:
            return None
        # The store matched by hash already; compare again in constant time so no code path depends on a
        # byte-by-byte comparison of attacker-chosen input.
        return key if hmac.compare_digest(key.key_hash, digest) else None

    def _remember(self, digest: str, key: VirtualKey | None, now: float) -> None:
        ttl = self.ttl_s if key is not None else self.negative_ttl_s
        self._cache[digest] = (now + ttl, key)
        self._cache.move_to_end(digest)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)

    def list(self) -> list[VirtualKey]:
        return self.store.list()

    def revoke(self, key_id: str) -> VirtualKey:
        key = self.store.revoke(key_id, self._now())
        if key is None:
            raise KeyNotFoundError(f"no virtual key with id {key_id!r} (see `fiscus keys list`)")
        self._cache.pop(key.key_hash, None)
        return key

    def set_claims(self, key_id: str, claims: KeyClaims) -> VirtualKey:
        """Replace what a key may claim; other gateways see it within `ttl_s` (their cache expires)."""
        key = self.store.set_claims(key_id, claims)
        if key is None:
            raise KeyNotFoundError(f"no virtual key with id {key_id!r} (see `fiscus keys list`)")
        self._cache.pop(key.key_hash, None)
        return key
