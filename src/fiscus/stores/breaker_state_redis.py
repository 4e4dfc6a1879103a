"""`RedisBreakerState` (redis://host:port/db?prefix=p): breaker records shared by gateway workers on many hosts.

Two hashes under the budget store's hash tag `{p}`, so they live in its Redis Cluster slot: `{p}:breakers`
(scope → record JSON) and `{p}:breakers:since` (scope → its `since`, for the newest-wins check in one script).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

import redis
from redis.exceptions import RedisError

from fiscus.errors import StoreError
from fiscus.guards.record import BreakerRecord
from fiscus.guards.state import BreakerStateStore

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
        tag = "{" + prefix + "}" if "{" not in prefix else prefix
        self._keys = [f"{tag}:breakers", f"{tag}:breakers:since"]
        self._where = where
        self._save = client.register_script(_SAVE)
        self.url = where

    @classmethod
    def from_url(cls, url: str, *, prefix: str | None = None, **options: Any) -> RedisBreakerState:
        """The budget store's URL form: `redis://[user:password@]host:port/db?prefix=tenant`."""
        parsed = urlparse(url)
        query = parse_qs(parsed.query)
        prefix = prefix or query.pop("prefix", ["fiscus"])[0]
        rest = "&".join(f"{k}={v}" for k, values in query.items() for v in values)
        where = f"redis at {parsed.hostname or 'localhost'}:{parsed.port or 6379}{parsed.path or ''}"
        try:
            client = redis.Redis.from_url(parsed._replace(query=rest).geturl(), **options)
        except (ValueError, RedisError) as exc:
            raise StoreError(f"breaker state URL {url!r}: {exc}") from None
        return cls(client, prefix=prefix, where=where)

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
