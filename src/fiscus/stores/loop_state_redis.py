"""`RedisLoopState` (redis://host:port/db?prefix=p): loop state shared by gateway workers on many hosts.

Per conversation a hash `{p}:ls:<digest>` with its version `v` and state `d`, expiring `ttl` after its last
write. One swap is one EVALSHA: compare the versions, write and set the expiry, or answer the newer records.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.exceptions import RedisError

from fiscus.errors import StoreError
from fiscus.guards.loop_state import Held, LoopStateStore
from fiscus.stores.redis_url import hash_tag, redis_client

# KEYS: the records. ARGV: the expiry in ms, then per record the version the caller's copy is and the new state.
# Returns nothing when all were stored, else per record {held version, held state} (0 and none when none is held).
_SWAP = """
local held, stale = {}, false
for i = 1, #KEYS do
  local record = redis.call('HMGET', KEYS[i], 'v', 'd')
  local version = tonumber(record[1]) or 0
  held[i] = {version, record[2]}
  if version ~= tonumber(ARGV[2 * i]) then stale = true end
end
if stale then return held end
for i = 1, #KEYS do
  redis.call('HSET', KEYS[i], 'v', held[i][1] + 1, 'd', ARGV[2 * i + 1])
  redis.call('PEXPIRE', KEYS[i], ARGV[1])
end
return false
"""


class RedisLoopState(LoopStateStore):
    def __init__(self, client: redis.Redis, *, prefix: str = "fiscus", where: str = "redis") -> None:
        self._client = client
        self._tag = hash_tag(prefix)
        self._where = where
        self._swap = client.register_script(_SWAP)
        self.url = where

    @classmethod
    def from_url(cls, url: str, *, prefix: str | None = None, **options: Any) -> RedisLoopState:
        """The budget store's URL form: `redis://[user:password@]host:port/db?prefix=tenant`."""
        client, parts = redis_client(url, "loop state", prefix, **options)
        return cls(client, prefix=parts.prefix, where=parts.where)

    def swap(self, records: list[tuple[str, int, bytes]], ttl_s: float) -> dict[str, Held] | None:
        args: list[Any] = [max(int(ttl_s * 1000), 1)]
        for _, version, data in records:
            args += [version, data]
        try:
            reply = self._swap(keys=[f"{self._tag}:ls:{key}" for key, _, _ in records], args=args)
        except RedisError as exc:
            raise StoreError(f"loop state ({self._where}): {exc}") from None
        if reply is None:
            return None
        return {
            key: (int(found[0]), bytes(found[1]) if len(found) > 1 and found[1] else None)
            for (key, _, _), found in zip(records, reply, strict=True)
        }

    def close(self) -> None:
        self._client.close()
