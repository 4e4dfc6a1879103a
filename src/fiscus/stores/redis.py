"""`RedisStore` (redis://host:port/db?prefix=...): budget counters shared by many hosts.

Each operation is one Lua script (lua/*.lua, with lua/lib.lua prepended), so every check and update of an
operation is atomic. Scripts run by EVALSHA and are loaded again on NOSCRIPT (after a restart or failover).

Key layout, safe for Redis Cluster: every key shares the hash tag `{prefix}` and so one slot —
`{p}:c:<counter key>` (hash: spent/reserved per meter), `{p}:leases` (zset: reservation id → lease expiry),
`{p}:records` (hash: reservation id → cmsgpack of each line's counter key and amounts), `{p}:s:<id>`
(marker of a settled id, with a TTL). The client names every key an operation touches in KEYS, except the
counters of *other* requests' expired leases, which a reap reads from their records (same slot).

Exactness: Lua numbers are doubles, so every amount and limit must stay below 2**53. In nano-dollars that is
about $9 million per counter; larger values are refused with a `StoreError` rather than rounded.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlparse

import redis
import redis.asyncio
from redis.exceptions import NoScriptError, RedisError

from fiscus.errors import StoreError
from fiscus.stores.base import Amounts, BudgetStore, Counter, Refusal, Reservation, ReserveLine, SettleOutcome
from fiscus.stores.redis_batch import ScriptBatcher

MAX_EXACT = 2**53 - 1  # largest integer a Lua double holds exactly
REAP_BATCH = 100  # expired leases reaped at the start of reserve/settle
FULL_REAP_BATCH = 1000  # per script call in `reap`, repeated until done
DEFAULT_COUNTER_TTL_MARGIN = 86400.0  # a counter lives this long past its line's `expires_at`
DEFAULT_SETTLED_TTL = 86400  # a settled id is remembered this long (s), so a retried settle is a DUPLICATE
_FIELDS = ("sn", "st", "sr", "rn", "rt", "rr")
_OUTCOMES = {"settled": SettleOutcome.SETTLED, "late": SettleOutcome.LATE, "duplicate": SettleOutcome.DUPLICATE}


def _load_scripts() -> dict[str, tuple[str, str]]:
    """name → (source, sha1); each script is lib.lua followed by its own file."""
    folder = resources.files("fiscus.stores") / "lua"
    lib = (folder / "lib.lua").read_text()
    scripts = {}
    for name in ("reserve", "settle", "renew", "reap"):
        source = lib + "\n" + (folder / f"{name}.lua").read_text()
        scripts[name] = (source, hashlib.sha1(source.encode()).hexdigest())
    return scripts


_SCRIPTS = _load_scripts()


class RedisStore(BudgetStore):
    """Give it a sync client, an async client, or both (the async methods need the async one)."""

    def __init__(
        self,
        client: redis.Redis | None = None,
        *,
        aclient: redis.asyncio.Redis | None = None,
        prefix: str = "fiscus",
        where: str = "redis",
        counter_ttl_margin: float = DEFAULT_COUNTER_TTL_MARGIN,
        settled_ttl: int = DEFAULT_SETTLED_TTL,
        batch: bool = True,
    ) -> None:
        if client is None and aclient is None:
            raise StoreError("Redis store needs a client (or use RedisStore.from_url)")
        self._client = client
        self._aclient = aclient
        self._where = where
        self._tag = "{" + prefix + "}" if "{" not in prefix else prefix
        self._leases = f"{self._tag}:leases"
        self._records = f"{self._tag}:records"
        self._margin = counter_ttl_margin
        self._settled_ttl = str(int(settled_ttl))
        self._batch = batch  # async calls of one event loop share pipelines (see redis_batch)
        self._batcher: ScriptBatcher | None = None
        self._batcher_loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_url(cls, url: str, *, prefix: str | None = None, **options: Any) -> RedisStore:
        """`redis://[user:password@]host:port/db?prefix=tenant`: a sync and an async client on the same URL."""
        parsed = urlparse(url)
        query = parse_qs(parsed.query)
        prefix = prefix or query.pop("prefix", ["fiscus"])[0]
        rest = "&".join(f"{k}={v}" for k, values in query.items() for v in values)
        client_url = parsed._replace(query=rest).geturl()
        where = f"redis at {parsed.hostname or 'localhost'}:{parsed.port or 6379}{parsed.path or ''}"
        try:
            client = redis.Redis.from_url(client_url)
            aclient = redis.asyncio.Redis.from_url(client_url)
        except (ValueError, RedisError) as exc:
            raise StoreError(f"Redis store URL {url!r}: {exc}") from exc
        return cls(client, aclient=aclient, prefix=prefix, where=where, **options)

    # -- argument building (shared by the sync and async paths) ---------------------------------------

    def counter_key(self, key: str) -> str:
        return f"{self._tag}:c:{key}"

    def _ttl(self, expires_at: float | None, now: float) -> str:
        # Relative to `now` (the caller's clock), so a simulated clock never sets a TTL in the past.
        return "" if expires_at is None else str(math.ceil(max(expires_at - now, 0.0) + self._margin))

    def _reserve_args(
        self, rid: str, lines: tuple[ReserveLine, ...], now: float, lease_seconds: float
    ) -> tuple[list[str], list[str | int]]:
        keys = [self._leases, self._records, f"{self._tag}:s:{rid}"]
        args: list[str | int] = [rid, repr(now), repr(now + lease_seconds), REAP_BATCH, len(lines)]
        for line in lines:
            if not line.keys:
                raise StoreError(f"budget {line.budget!r}: a reserve line needs at least one counter key")
            keys.extend(self.counter_key(key) for key in line.keys)
            limits, amount = line.limits, line.amount
            args.append(len(line.keys))
            for value in (limits.nanos, limits.tokens, limits.requests):
                args.append("" if value is None else _exact(value, line.budget))
            for value in (amount.nanos, amount.tokens, amount.requests):
                args.append(_exact(value, line.budget))
            args.append(self._ttl(line.expires_at, now))
        return keys, args

    def _reserve_result(
        self, reply: list[Any], rid: str, lines: tuple[ReserveLine, ...], now: float, lease_seconds: float
    ) -> Reservation | Refusal:
        code = int(reply[0])
        if code == 1:
            return Reservation(rid, lines, now + lease_seconds)
        if code == 2:
            return Reservation(rid, lines, float(reply[1]))
        if code == -1:
            raise StoreError(f"reservation id {rid!r} was already settled; use a new id")
        line = lines[int(reply[1]) - 1]
        return Refusal(line.budget, Amounts(int(reply[2]), int(reply[3]), int(reply[4])), line.limits)

    def _settle_args(self, reservation: Reservation, actual: Amounts, now: float) -> tuple[list[str], list[str | int]]:
        rid = reservation.id
        keys = [self._leases, self._records, f"{self._tag}:s:{rid}"]
        keys.extend(self.counter_key(line.keys[0]) for line in reservation.lines)
        args: list[str | int] = [rid, repr(now), REAP_BATCH]
        args.extend(_exact(value, "settle") for value in (actual.nanos, actual.tokens, actual.requests))
        args.append(self._settled_ttl)
        args.extend(self._ttl(line.expires_at, now) for line in reservation.lines)
        return keys, args

    def _counters_result(self, keys: tuple[str, ...], replies: list[list[bytes | None]]) -> dict[str, Counter]:
        result = {}
        for key, values in zip(keys, replies, strict=True):
            sn, st, sr, rn, rt, rr = (int(v) if v is not None else 0 for v in values)
            result[key] = Counter(Amounts(sn, st, sr), Amounts(rn, rt, rr))
        return result

    def _error(self, exc: RedisError) -> StoreError:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return StoreError(f"Redis store ({self._where}): {first_line}")

    # -- sync path ------------------------------------------------------------------------------------

    def _run(self, name: str, keys: list[str], args: list[str | int]) -> Any:
        if self._client is None:
            raise StoreError("Redis store was given only an async client: use the a* methods")
        source, sha = _SCRIPTS[name]
        try:
            try:
                return self._client.evalsha(sha, len(keys), *keys, *args)
            except NoScriptError:
                self._client.script_load(source)
                return self._client.evalsha(sha, len(keys), *keys, *args)
        except RedisError as exc:
            raise self._error(exc) from exc

    def reserve(
        self, reservation_id: str, lines: tuple[ReserveLine, ...], *, now: float, lease_seconds: float
    ) -> Reservation | Refusal:
        keys, args = self._reserve_args(reservation_id, lines, now, lease_seconds)
        return self._reserve_result(self._run("reserve", keys, args), reservation_id, lines, now, lease_seconds)

    def settle(self, reservation: Reservation, actual: Amounts, *, now: float) -> str:
        keys, args = self._settle_args(reservation, actual, now)
        return _outcome(self._run("settle", keys, args))

    def renew(self, reservation: Reservation, *, now: float, lease_seconds: float) -> bool:
        args: list[str | int] = [reservation.id, repr(now), repr(now + lease_seconds)]
        return bool(self._run("renew", [self._leases], args))

    def reap(self, *, now: float) -> int:
        total = 0
        while True:
            count = int(self._run("reap", [self._leases, self._records], [repr(now), FULL_REAP_BATCH]))
            total += count
            if count < FULL_REAP_BATCH:
                return total

    def counters(self, keys: tuple[str, ...], *, now: float) -> dict[str, Counter]:
        self.reap(now=now)
        assert self._client is not None  # reap checked it
        try:
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(self.counter_key(key), _FIELDS)
            replies = pipe.execute()
        except RedisError as exc:
            raise self._error(exc) from exc
        return self._counters_result(keys, replies)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # -- async path: the same scripts through redis.asyncio ------------------------------------------

    async def _arun(self, name: str, keys: list[str], args: list[str | int]) -> Any:
        if self._aclient is None:
            raise StoreError("Redis store was given only a sync client: use the sync methods")
        source, sha = _SCRIPTS[name]
        try:
            if self._batch:
                loop = asyncio.get_running_loop()
                if self._batcher is None or self._batcher_loop is not loop:
                    self._batcher, self._batcher_loop = ScriptBatcher(self._aclient), loop
                return await self._batcher.evalsha(sha, source, keys, args)
            try:
                return await self._aclient.evalsha(sha, len(keys), *keys, *args)
            except NoScriptError:
                await self._aclient.script_load(source)
                return await self._aclient.evalsha(sha, len(keys), *keys, *args)
        except RedisError as exc:
            raise self._error(exc) from exc

    async def areserve(
        self, reservation_id: str, lines: tuple[ReserveLine, ...], *, now: float, lease_seconds: float
    ) -> Reservation | Refusal:
        keys, args = self._reserve_args(reservation_id, lines, now, lease_seconds)
        reply = await self._arun("reserve", keys, args)
        return self._reserve_result(reply, reservation_id, lines, now, lease_seconds)

    async def asettle(self, reservation: Reservation, actual: Amounts, *, now: float) -> str:
        keys, args = self._settle_args(reservation, actual, now)
        return _outcome(await self._arun("settle", keys, args))

    async def arenew(self, reservation: Reservation, *, now: float, lease_seconds: float) -> bool:
        args: list[str | int] = [reservation.id, repr(now), repr(now + lease_seconds)]
        return bool(await self._arun("renew", [self._leases], args))

    async def areap(self, *, now: float) -> int:
        total = 0
        while True:
            count = int(await self._arun("reap", [self._leases, self._records], [repr(now), FULL_REAP_BATCH]))
            total += count
            if count < FULL_REAP_BATCH:
                return total

    async def acounters(self, keys: tuple[str, ...], *, now: float) -> dict[str, Counter]:
        await self.areap(now=now)
        assert self._aclient is not None  # areap checked it
        try:
            pipe = self._aclient.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(self.counter_key(key), _FIELDS)
            replies = await pipe.execute()
        except RedisError as exc:
            raise self._error(exc) from exc
        return self._counters_result(keys, replies)

    async def aclose(self) -> None:
        if self._aclient is not None:
            await self._aclient.aclose()
        self.close()


def _exact(value: int, what: str) -> int:
    if not 0 <= value <= MAX_EXACT:
        raise StoreError(f"{what}: {value} is outside 0..2**53-1, the exact integer range of Redis Lua scripts")
    return value


def _outcome(reply: bytes | str) -> str:
    return _OUTCOMES[reply.decode() if isinstance(reply, bytes) else reply]
