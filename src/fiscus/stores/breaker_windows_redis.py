"""`RedisBreakerWindows` (redis://host:port/db?prefix=p): breaker windows shared by workers on many hosts.

Per scope, under the budget store's hash tag `{p}` (one Redis Cluster slot): a hash `{p}:bw:s:<scope>` of
hour → nano-dollars (HINCRBY: integers add exactly), a hash `{p}:bw:c:<scope>` of `c:<bucket>` / `f:<bucket>`
→ calls / failures, each with an expiry a little past what it keeps, and a string `{p}:bw:p:<scope>` holding
the half-open probe lease (SET NX PX). One exchange is one EVALSHA: the deltas go in, the fields past the
horizon go out, the totals come back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis
from redis.exceptions import RedisError

from fiscus.errors import StoreError
from fiscus.guards.windows import BUCKET_S, BreakerWindows, Delta, Horizon, Totals
from fiscus.stores.redis_url import hash_tag, redis_client

# KEYS: per scope its spend hash then its calls hash. ARGV: hour, oldest hour, bucket, oldest bucket, spend
# ttl, calls ttl, then per scope: spend nanos, calls, failures. Returns per scope its two hashes as flat lists.
_EXCHANGE = """
local hour, oldest_hour, bucket, oldest_bucket = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local out = {}
for i = 1, #KEYS / 2 do
  local spend_key, calls_key = KEYS[2 * i - 1], KEYS[2 * i]
  local nanos, calls, failures = ARGV[4 + 3 * i], tonumber(ARGV[5 + 3 * i]), tonumber(ARGV[6 + 3 * i])
  if nanos ~= '0' then
    redis.call('HINCRBY', spend_key, hour, nanos)
    redis.call('EXPIRE', spend_key, ARGV[5])
  end
  if calls > 0 then
    redis.call('HINCRBY', calls_key, 'c:' .. bucket, calls)
    if failures > 0 then redis.call('HINCRBY', calls_key, 'f:' .. bucket, failures) end
    redis.call('EXPIRE', calls_key, ARGV[6])
  end
  local spend = redis.call('HGETALL', spend_key)
  local kept = {}
  for j = 1, #spend, 2 do
    if tonumber(spend[j]) < oldest_hour then
      redis.call('HDEL', spend_key, spend[j])
    else
      kept[#kept + 1] = spend[j]; kept[#kept + 1] = spend[j + 1]
    end
  end
  local counts = redis.call('HGETALL', calls_key)
  local live = {}
  for j = 1, #counts, 2 do
    if tonumber(string.sub(counts[j], 3)) < oldest_bucket then
      redis.call('HDEL', calls_key, counts[j])
    else
      live[#live + 1] = counts[j]; live[#live + 1] = counts[j + 1]
    end
  end
  out[2 * i - 1] = kept
  out[2 * i] = live
end
return out
"""


class RedisBreakerWindows(BreakerWindows):
    def __init__(self, client: redis.Redis, *, prefix: str = "fiscus", where: str = "redis") -> None:
        self._client = client
        self._tag = hash_tag(prefix)
        self._where = where
        self._exchange = client.register_script(_EXCHANGE)
        self.url = where

    @classmethod
    def from_url(cls, url: str, *, prefix: str | None = None, **options: Any) -> RedisBreakerWindows:
        """The budget store's URL form: `redis://[user:password@]host:port/db?prefix=tenant`."""
        client, parts = redis_client(url, "breaker windows", prefix, **options)
        return cls(client, prefix=parts.prefix, where=parts.where)

    def _key(self, kind: str, scope: str) -> str:
        return f"{self._tag}:bw:{kind}:{scope}"

    def exchange(self, deltas: Mapping[str, Delta], scopes: list[str], horizon: Horizon) -> dict[str, Totals]:
        wanted = list(dict.fromkeys([*deltas, *scopes]))
        keys: list[str] = []
        args: list[Any] = [
            horizon.hour,
            horizon.oldest_hour,
            horizon.bucket,
            horizon.oldest_bucket,
            (horizon.hour - horizon.oldest_hour + 2) * 3600,
            (horizon.bucket - horizon.oldest_bucket + 2) * BUCKET_S,
        ]
        none = Delta()
        for scope in wanted:
            keys += [self._key("s", scope), self._key("c", scope)]
            delta = deltas.get(scope, none)
            args += [delta.spend_nanos, delta.calls, delta.failures]
        try:
            replies = self._exchange(keys=keys, args=args)
        except RedisError as exc:
            raise StoreError(f"breaker windows ({self._where}): {exc}") from None
        found: dict[str, Totals] = {}
        for i, scope in enumerate(wanted):
            spend, counts = replies[2 * i], replies[2 * i + 1]
            hourly = {int(spend[j]): int(spend[j + 1]) for j in range(0, len(spend), 2)}
            buckets: dict[int, list[int]] = {}
            for j in range(0, len(counts), 2):
                field = counts[j].decode() if isinstance(counts[j], bytes) else str(counts[j])
                slot = buckets.setdefault(int(field[2:]), [0, 0])
                slot[0 if field[0] == "c" else 1] = int(counts[j + 1])
            found[scope] = Totals(hourly, {b: (c, f) for b, (c, f) in buckets.items()})
        return found

    def claim_probe(self, scope: str, holder: str, *, now: float, lease_s: float) -> bool:
        key = self._key("p", scope)
        try:
            if self._client.set(key, holder, nx=True, px=max(int(lease_s * 1000), 1)):
                return True
            held = self._client.get(key)
        except RedisError as exc:
            raise StoreError(f"breaker windows ({self._where}): {exc}") from None
        return held is not None and held.decode() == holder

    def release_probe(self, scope: str, holder: str) -> None:
        key = self._key("p", scope)
        try:  # only the holder's own lease: compare and delete in one step
            self._client.eval(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
                1,
                key,
                holder,
            )
        except RedisError as exc:
            raise StoreError(f"breaker windows ({self._where}): {exc}") from None

    def clear(self, scope: str) -> None:
        try:
            self._client.delete(self._key("s", scope), self._key("c", scope), self._key("p", scope))
        except RedisError as exc:
            raise StoreError(f"breaker windows ({self._where}): {exc}") from None

    def close(self) -> None:
        self._client.close()
