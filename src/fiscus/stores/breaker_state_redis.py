"""`RedisBreakerState` (redis://host:port/db?prefix=p): breaker records shared by gateway workers on many hosts.

Two hashes under the budget store's hash tag `{p}`, so they live in its Redis Cluster slot: `{p}:breakers`
(scope → record JSON) and `{p}:breakers:since` (scope → its `since`, for the newest-wins check in one script).
"""

from __future__ import annotations

from typing import Any

import redis
from redis.exceptions import RedisError

from fiscus.errors import StoreError
from fiscus.guards.record import BreakerRecord
from fiscus.guards.state import BreakerStateStore
from fiscus.stores.redis_url import hash_tag, redis_client

_SAVE = """
local held = redis.call('HGET', KEYS[2], ARGV[1])
if held and tonumber(held) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""


class RedisBreakerState(BreakerStateStore):
    def __init__(self, client: redis.Redis, *, prefix: str = "fiscus", where: str = "redis") -> None:
        self._client = client
        tag = hash_tag(prefix)
        self._keys = [f"{tag}:breakers", f"{tag}:breakers:since"]
        self._where = where
        self._save = client.register_script(_SAVE)
        self.url = where

    @classmethod
    def from_url(cls, url: str, *, prefix: str | None = None, **options: Any) -> RedisBreakerState:
        """The budget store's URL form: `redis://[user:password@]host:port/db?prefix=tenant`."""
        client, parts = redis_client(url, "breaker state", prefix, **options)
        return cls(client, prefix=parts.prefix, where=parts.where)

    def save(self, record: BreakerRecord) -> bool:
        try:
            return bool(self._save(keys=self._keys, args=[record.scope, repr(record.since), record.to_json()]))
        except RedisError as exc:
            raise StoreError(f"breaker state ({self._where}): {exc}") from None

    def load_all(self) -> list[BreakerRecord]:
        try:
            bodies = self._client.hvals(self._keys[0])
        except RedisError as exc:
            raise StoreError(f"breaker state ({self._where}): {exc}") from None
        return [BreakerRecord.from_json(body) for body in bodies]

    def close(self) -> None:
        self._client.close()
