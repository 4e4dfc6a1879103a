"""The response cache in Redis (the budget store's server and `?prefix=`): one string per entry with its TTL, and
per namespace a sorted set of keys by expiry, trimmed to the namespace's bound in the same Lua script that
writes the entry. Every key carries the hash tag `{prefix}`, so a namespace lives in one Cluster slot."""

from __future__ import annotations

import time

import redis
from redis.exceptions import RedisError

from fiscus.errors import StoreError
from fiscus.stores.redis_url import hash_tag, redis_client
from fiscus.stores.response_cache import ResponseCacheStore

# KEYS: entry, index. ARGV: value, expires_ms, ttl_ms, now_ms, max_entries, member, entry key prefix.
_PUT = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
if over > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, over - 1)
  for _, member in ipairs(old) do redis.call('DEL', ARGV[7] .. member) end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, over - 1)
end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
"""


class RedisResponseCache(ResponseCacheStore):
    def __init__(self, client: redis.Redis, *, prefix: str = "fiscus", where: str = "redis") -> None:
        self._client = client
        tag = hash_tag(prefix)
        self._base = f"{tag}:rc:"
        self._where = where
        self._put = client.register_script(_PUT)

    @classmethod
    def from_url(cls, url: str) -> RedisResponseCache:
        # a hung server fails a lookup (a miss) within seconds instead of holding the call
        client, parts = redis_client(url, "Redis response cache", socket_timeout=2.0, socket_connect_timeout=2.0)
        return cls(client, prefix=parts.prefix, where=parts.where)

    def _entry(self, namespace: str, key: str) -> str:
        return f"{self._base}{namespace}:e:{key}"

    def get(self, namespace: str, key: str, *, now: float | None = None) -> bytes | None:
        try:
            value = self._client.get(self._entry(namespace, key))
        except RedisError as exc:
            raise StoreError(f"response cache ({self._where}): {exc}") from exc
        return bytes(value) if value is not None else None  # type: ignore[arg-type]

    def put(
        self, namespace: str, key: str, value: bytes, *, ttl_s: float, max_entries: int, now: float | None = None
    ) -> None:
        now_ms = int((time.time() if now is None else now) * 1000)
        ttl_ms = max(1, int(ttl_s * 1000))
        entry_prefix = f"{self._base}{namespace}:e:"
        keys = [entry_prefix + key, f"{self._base}{namespace}:index"]
        args = [value, now_ms + ttl_ms, ttl_ms, now_ms, max_entries, key, entry_prefix]
        try:
            self._put(keys=keys, args=args)
        except RedisError as exc:
            raise StoreError(f"response cache ({self._where}): {exc}") from exc

    def count(self, namespace: str, *, now: float | None = None) -> int:
        now_ms = int((time.time() if now is None else now) * 1000)
        try:
            return int(self._client.zcount(f"{self._base}{namespace}:index", f"({now_ms}", "+inf"))  # type: ignore[arg-type]
        except RedisError as exc:
            raise StoreError(f"response cache ({self._where}): {exc}") from exc

    def close(self) -> None:
        self._client.close()
