"""`RedisLoopState` (redis://host:port/db?prefix=p): loop state shared by gateway workers on many hosts.

Per conversation a hash `{p}:ls:<digest>` with its version `v` and state `d`, expiring `ttl` after its last
write. One swap is one EVALSHA: compare the version, write and set the expiry, or answer the newer record.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

import redis
from redis.exceptions import RedisError

from fiscus.errors import StoreError
from fiscus.guards.loop_state import LoopStateStore

# KEYS: the record. ARGV: the version the caller's copy is, the new state, the expiry in ms.
# Returns nothing when stored, else {held version, held state} (version 0 and no state when none is held).
_SWAP = """
local held = redis.call('HMGET', KEYS[1], 'v', 'd')
local version = tonumber(held[1]) or 0
if version == tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'v', version + 1, 'd', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return false
end
return {version, held[2]}
"""


class RedisLoopState(LoopStateStore):
    def __init__(self, client: redis.Redis, *, prefix: str = "fiscus", where: str = "redis") -> None:
        self._client = client
        self._tag = "{" + prefix + "}" if "{" not in prefix else prefix
        self._where = where
        self._swap = client.register_script(_SWAP)
        self.url = where

    @classmethod
    def from_url(cls, url: str, *, prefix: str | None = None, **options: Any) -> RedisLoopState:
        """The budget store's URL form: `redis://[user:password@]host:port/db?prefix=tenant`."""
        parsed = urlparse(url)
        query = parse_qs(parsed.query)
        prefix = prefix or query.pop("prefix", ["fiscus"])[0]
        rest = "&".join(f"{k}={v}" for k, values in query.items() for v in values)
        where = f"redis at {parsed.hostname or 'localhost'}:{parsed.port or 6379}{parsed.path or ''}"
        try:
            client = redis.Redis.from_url(parsed._replace(query=rest).geturl(), **options)
        except (ValueError, RedisError) as exc:
            raise StoreError(f"loop state URL {url!r}: {exc}") from None
        return cls(client, prefix=prefix, where=where)

    def swap(self, key: str, version: int, data: bytes, ttl_s: float) -> tuple[int, bytes | None] | None:
        try:
            reply = self._swap(keys=[f"{self._tag}:ls:{key}"], args=[version, data, max(int(ttl_s * 1000), 1)])
        except RedisError as exc:
            raise StoreError(f"loop state ({self._where}): {exc}") from None
        if reply is None:
            return None
        held, data_held = reply
        return int(held), (bytes(data_held) if data_held else None)

    def close(self) -> None:
        self._client.close()
