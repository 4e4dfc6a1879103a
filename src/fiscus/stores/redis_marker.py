"""The Redis store's loss marker: `{p}:v2:epoch` and the ids settled while it was gone, `{p}:v2:lost`.

The scripts read the marker in the same call as the counters (lua/lib.lua: `intact`), so checking it costs the hot
path one GET on the server and no round trip. Restoring is one script (lua/restore.lua) that adds the rebuilt
counters and writes the marker only while it is still not whole, so of several workers rebuilding at once the
first one's figures stand and the others change nothing.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any

import redis
from redis.exceptions import RedisError

from fiscus.errors import StoreError
from fiscus.stores.base import NOTICED, Restored
from fiscus.stores.redis_channel import bulk
from fiscus.stores.redis_scripts import Call, call

_RESTORED = struct.Struct("<4d")
MAX_EXACT = 2**53 - 1  # largest integer a Lua double holds exactly


class Marker:
    """Commands on one store's marker and lost set (sync client)."""

    def __init__(self, base: str) -> None:
        self.key = f"{base}epoch"
        self.lost = f"{base}lost"

    def read(self, client: redis.Redis) -> str | None:
        value = client.get(self.key)
        return None if value is None else value.decode()

    def claim(self, client: redis.Redis, now: float) -> bool:
        return bool(client.set(self.key, f"{NOTICED}{now}", nx=True))

    def lost_ids(self, client: redis.Redis) -> set[str]:
        return {member.decode() for member in client.smembers(self.lost)}

    def mark_fresh(self, client: redis.Redis, epoch: str) -> None:
        """An unguarded store met no marker: it starts afresh (what it holds is all there is)."""
        client.set(self.key, epoch, nx=True)


def restore_command(
    fixed: tuple[bytes, ...], counter_key: str, spent: Mapping[str, Restored], epoch: str, margin: float
) -> Call:
    """lua/restore.lua for these counters: keys after the three fixed ones, their amounts packed in that order."""
    keys: list[bytes] = []
    packed: list[bytes] = []
    for key, (amounts, expires_at) in spent.items():
        for value in (amounts.nanos, amounts.tokens, amounts.requests):
            if not 0 <= value <= MAX_EXACT:
                raise StoreError(f"restore {key}: {value} is outside the exact integer range of Redis Lua scripts")
        keys.append(bulk(f"{counter_key}{key}".encode()))
        drop = 0.0 if expires_at is None else float(expires_at) + margin
        packed.append(_RESTORED.pack(amounts.nanos, amounts.tokens, amounts.requests, drop))
    args = [bulk(epoch.encode()), bulk(b"".join(packed))]
    count = bulk(str(len(fixed) + len(keys)).encode())
    return call("restore", [count, *fixed, *keys, *args])


class MarkerMethods:
    """The store interface's marker methods for `RedisStore` (which provides the attributes named here)."""

    _marker: Marker
    _fixed: tuple[bytes, ...]
    _counter_prefix: str
    _margin: float
    _sync_client: Callable[[], redis.Redis]
    _error: Callable[[RedisError], Exception]
    _run: Callable[[Call], Any]

    def _marker_call(self, work: Callable[[redis.Redis], Any]) -> Any:
        try:
            return work(self._sync_client())
        except RedisError as exc:
            raise self._error(exc) from exc

    def marker(self) -> str | None:
        return self._marker_call(self._marker.read)  # type: ignore[no-any-return]

    def claim_loss(self, *, now: float) -> bool:
        return bool(self._marker_call(lambda client: self._marker.claim(client, now)))

    def lost_ids(self) -> set[str]:
        return self._marker_call(self._marker.lost_ids)  # type: ignore[no-any-return]

    def restore(self, spent: Mapping[str, Restored], *, epoch: str, now: float) -> bool:
        command = restore_command(self._fixed, self._counter_prefix, spent, epoch, self._margin)
        return bool(self._run(command))
