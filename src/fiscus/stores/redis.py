"""`RedisStore` (redis://host:port/db?prefix=...): budget counters shared by many hosts.

Each operation is one Lua script (lua/*.lua, sharing lua/lib.lua), so every check and update of an operation is
atomic. They run as one Redis Functions library by FCALL on Redis 7+, else by EVALSHA (`redis_scripts`; pass
`functions=False` for EVALSHA only), and are loaded again whenever the server says it lacks them.

Key layout, safe for Redis Cluster: every key shares the hash tag `{prefix}` and so one slot, and carries the
layout version (`{p}:v2:`), so keys written by an older layout are never misread —
`{p}:v2:c:<counter key>` (one string: spent/reserved per meter and the time it may be dropped, see lua/lib.lua),
`{p}:v2:leases` (zset: reservation id → lease expiry), `{p}:v2:r:<id>` (a held reservation's record, replaced by
a settled marker with a TTL), `{p}:v2:index` (zset, all scores 0: every counter key, for listing by prefix with
ZRANGEBYLEX) and `{p}:v2:expiry` (zset: counter key → when it may be dropped). The client names every key an
operation touches in KEYS, except counters reached through records or the indexes (other requests' expired
leases, pruning), which share the slot.

Why this shape: the server's time per script is mostly its redis.calls. With each counter one string, a request
reads all its counters (and its own record) with one MGET and writes them with one MSET; a pair costs about seven
calls. Counters carry no Redis TTL (MSET would clear it on every write): one past its time that holds nothing
reads as zero, and is deleted when a script meets it in the expiry index (a few whenever a counter is created,
a batch per `reap`, and on listing) — the same rule, on the caller's clock, as the other stores.

Listing keys by prefix reads the index rather than SCAN: SCAN walks the whole keyspace of a node (every
tenant's keys) per call and in Cluster must be sent to the right node, where a range of one sorted set is
O(log n + m) and lives in the prefix's slot. The index costs the hot path nothing: an entry is added only
when a script creates a counter, and a few stale entries are pruned at the same moment.

Speed: commands are packed by this module (RESP bytes, with the fixed parts and counter keys encoded once)
instead of through redis-py's per-argument encoder; async calls go through `redis_channel` (pipelined, parsed
by hiredis) or, where it cannot connect, `redis_batch`. Concurrent async reserves and settles of one event loop
share one script call (`redis_coalesce`, lua/batch.lua): one MGET and one MSET for all of them, each still run
as if alone. Sync calls use a pooled redis-py connection.

Exactness: Lua numbers are doubles, so every amount and limit must stay below 2**53. In nano-dollars that is
about $9 million per counter; larger amounts, and writes that would take a counter past it, are refused with a
`StoreError` rather than rounded.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import redis
import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from fiscus.engine.ports import Amounts, Counter, Refusal, Reservation, ReserveLine, SettleOutcome
from fiscus.errors import StoreError, StoreUnreachable
from fiscus.stores.base import BudgetStore, OutboxEntry, lost_error, new_epoch, require_keys
from fiscus.stores.redis_batch import ScriptBatcher
from fiscus.stores.redis_channel import ScriptChannel, bulk, usable
from fiscus.stores.redis_coalesce import OpCoalescer
from fiscus.stores.redis_marker import MAX_EXACT, Marker, MarkerMethods
from fiscus.stores.redis_scripts import ATTEMPTS, LAYOUT, Call, Op, Scripts, call, single
from fiscus.stores.redis_url import hash_tag, parse_redis_url

FULL_REAP_BATCH = 1000  # per script call in `reap`, repeated until done
LIST_BATCH = 1000  # index entries per script call when listing keys
DEFAULT_COUNTER_TTL_MARGIN = 86400.0  # a counter is kept this long past its line's `expires_at`
DEFAULT_SETTLED_TTL = 86400  # a settled id is remembered this long (s), so a retried settle is a DUPLICATE
DEFAULT_POOL_SIZE = 64  # connections per client (sync, async) and process; a caller beyond it waits for one
DEFAULT_POOL_WAIT_S = 5.0  # how long a caller waits for a pooled connection before the call fails
DEFAULT_TIMEOUT_S = 1.0  # connect and read timeout: a Redis that does not answer fails a call this fast
KEY_CACHE_SIZE = 4096  # encoded counter keys kept (they change with each window, so the cache is cleared when full)
_COUNTER = struct.Struct("<7d")  # sn, st, sr, rn, rt, rr, drop time (0 = never): see lua/lib.lua
_LEASE = struct.Struct("<d")  # a record starts with its lease expiry
_LINE = struct.Struct("<8di")  # a record's line, followed by its first counter key (lua/lib.lua: LINE)
_ACTUAL = struct.Struct("<3d")  # settle: the actual amounts, followed by one drop time per line
_DOUBLE = struct.Struct("<d")
_MGET, _XADD, _STAR, _ID, _R = (bulk(word) for word in (b"MGET", b"XADD", b"*", b"id", b"r"))
_OUTCOMES = {b"settled": SettleOutcome.SETTLED, b"late": SettleOutcome.LATE, b"duplicate": SettleOutcome.DUPLICATE}


def _text(value: str) -> bytes:
    return bulk(value.encode())


def _number(value: int | float | str) -> bytes:
    text = (repr(value) if isinstance(value, float) else str(value)).encode()
    return b"$%d\r\n%s\r\n" % (len(text), text)


class RedisStore(MarkerMethods, BudgetStore):
    """Give it a sync client, an async client, or both (the async methods need the async one)."""

    durable = True  # the state lives in the server: a killed gateway process loses nothing settled

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
        functions: bool = True,
        guarded: bool = False,
    ) -> None:
        if client is None and aclient is None:
            raise StoreError("Redis store needs a client (or use RedisStore.from_url)")
        self._client = client
        self._aclient = aclient
        self._where = where
        tag = hash_tag(prefix)
        base = f"{tag}:{LAYOUT}:"
        self._leases = f"{base}leases"
        self._counter_prefix = f"{base}c:"
        self._record_prefix = f"{base}r:"  # lua/lib.lua derives it from the leases key: keep them side by side
        self._record_prefix_bytes = self._record_prefix.encode()
        self._outbox = f"{base}outbox"  # stream: lua/lib.lua derives it from the leases key too
        self._indexes = (_text(f"{base}index"), _text(f"{base}expiry"))
        self.guarded = guarded
        self._marker = Marker(base)  # lua/lib.lua derives its keys from the leases key too
        self._fixed = (_text(self._leases), *self._indexes)  # KEYS[1..3] of reserve, settle and reap
        self._key_cache: dict[str, bytes] = {}
        self._margin = counter_ttl_margin
        self._settled_ttl = _number(int(settled_ttl))
        self._batch = batch  # async calls of one event loop share a connection and are pipelined
        self._scripts = Scripts(functions=functions)  # FCALL where the server has it, else EVALSHA
        self._transport: ScriptChannel | ScriptBatcher | None = None
        self._transport_loop: asyncio.AbstractEventLoop | None = None
        self._coalescer: OpCoalescer | None = None  # reserves and settles of the transport's loop, in batches

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str | None = None,
        pool_size: int = DEFAULT_POOL_SIZE,
        pool_wait_s: float = DEFAULT_POOL_WAIT_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        **options: Any,
    ) -> RedisStore:
        """`redis://[user:password@]host:port/db?prefix=tenant`: a sync and an async client on the same URL.

        Each client's pool holds at most `pool_size` connections, and a caller finding them all busy queues for one
        up to `pool_wait_s` (redis-py's default pool fails at once with "Too many connections"). The async hot
        path (reserve, settle, counters, outbox) shares one pipelined connection per event loop and needs none.
        A connect or a reply that takes longer than `timeout_s` fails the call with `StoreUnreachable`."""
        if pool_size < 1 or pool_wait_s <= 0 or timeout_s <= 0:
            raise StoreError(
                f"Redis store: pool_size must be >= 1, pool_wait_s and timeout_s > 0, not "
                f"{pool_size}, {pool_wait_s}, {timeout_s}"
            )
        parts = parse_redis_url(url, prefix)
        client_url, prefix, where = parts.client_url, parts.prefix, parts.where
        try:
            timeouts = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
            pool = redis.BlockingConnectionPool.from_url(
                client_url, max_connections=pool_size, timeout=pool_wait_s, **timeouts
            )
            apool = redis.asyncio.BlockingConnectionPool.from_url(
                client_url, max_connections=pool_size, timeout=pool_wait_s, **timeouts
            )
            client = redis.Redis(connection_pool=pool)
            aclient = redis.asyncio.Redis(connection_pool=apool)
        except (ValueError, RedisError) as exc:
            raise StoreError(f"Redis store URL {url!r}: {exc}") from exc
        return cls(client, aclient=aclient, prefix=prefix, where=where, **options)

    # -- command building (shared by the sync and async paths) ----------------------------------------

    def counter_key(self, key: str) -> str:
        return f"{self._counter_prefix}{key}"

    def _encoded(self, key: str) -> tuple[bytes, bytes]:
        """A counter key as a RESP bulk string and as raw bytes (cached)."""
        encoded = self._key_cache.get(key)
        if encoded is None:
            if len(self._key_cache) >= KEY_CACHE_SIZE:
                self._key_cache.clear()
            raw = (self._counter_prefix + key).encode()
            encoded = self._key_cache[key] = (bulk(raw), raw)
        return encoded

    def _drop_time(self, expires_at: float | None) -> float:
        """When a counter this line lands on may be dropped (caller's clock); 0 for never."""
        return 0.0 if expires_at is None else float(expires_at) + self._margin

    def _reserve_op(self, rid: str, lines: tuple[ReserveLine, ...], now: float, lease_seconds: float) -> Op:
        # Built for every reserve: bulk strings are formatted inline, the common amounts checked in one test.
        raw_id = rid.encode()
        record_key = self._record_prefix_bytes + raw_id
        keys = [b"$%d\r\n%s\r\n" % (len(record_key), record_key)]
        lease = now + lease_seconds
        record = [_LEASE.pack(lease)]  # stored as it is by the script: see lua/lib.lua
        encoded, margin = self._encoded, self._margin
        for line in lines:
            line_keys = line.keys
            if not line_keys:
                require_keys(lines)
            for key in line_keys:
                keys.append(encoded(key)[0])
            head = encoded(line_keys[0])[1]
            limits, amount = line.limits, line.amount
            ln, lt, lr = limits.nanos, limits.tokens, limits.requests
            an, at, ar = amount.nanos, amount.tokens, amount.requests
            if not (
                (ln is None or 0 <= ln <= MAX_EXACT)
                and (lt is None or 0 <= lt <= MAX_EXACT)
                and (lr is None or 0 <= lr <= MAX_EXACT)
                and 0 <= an <= MAX_EXACT
                and 0 <= at <= MAX_EXACT
                and 0 <= ar <= MAX_EXACT
            ):
                for value in (ln, lt, lr, an, at, ar):
                    if value is not None:
                        _exact(value, line.budget)
            ln = -1 if ln is None else ln
            lt = -1 if lt is None else lt
            lr = -1 if lr is None else lr
            expires_at = line.expires_at
            drop = 0.0 if expires_at is None else float(expires_at) + margin
            record.append(_LINE.pack(len(line_keys), ln, lt, lr, an, at, ar, drop, len(head)))
            record.append(head)
        packed = b"".join(record)
        args = [
            b"$%d\r\n%s\r\n" % (len(raw_id), raw_id),
            _number(now),
            _number(lease),
            b"$%d\r\n%s\r\n" % (len(packed), packed),
        ]
        return Op("reserve", keys, args)

    def _reserve_command(self, rid: str, lines: tuple[ReserveLine, ...], now: float, lease_seconds: float) -> Call:
        return single(self._reserve_op(rid, lines, now, lease_seconds), self._fixed)

    def _reserve_result(
        self, reply: list[Any], rid: str, lines: tuple[ReserveLine, ...], now: float, lease_seconds: float
    ) -> Reservation | Refusal:
        code = reply[0]
        if code == 1:
            return Reservation(rid, lines, now + lease_seconds)
        if code == 2:
            return Reservation(rid, lines, float(reply[1]))
        if code == -1:
            raise StoreError(f"reservation id {rid!r} was already settled; use a new id")
        if code == -2:
            raise lost_error(self._where)
        line = lines[int(reply[1]) - 1]
        return Refusal(line.budget, Amounts(int(reply[2]), int(reply[3]), int(reply[4])), line.limits)

    def _settle_op(self, reservation: Reservation, actual: Amounts, now: float, record: bytes | None = None) -> Op:
        rid, lines = reservation.id, reservation.lines
        raw_id = rid.encode()
        record_key = self._record_prefix_bytes + raw_id
        keys = [b"$%d\r\n%s\r\n" % (len(record_key), record_key)]
        encoded, margin = self._encoded, self._margin
        an, at, ar = actual.nanos, actual.tokens, actual.requests
        if not (0 <= an <= MAX_EXACT and 0 <= at <= MAX_EXACT and 0 <= ar <= MAX_EXACT):
            an, at, ar = _exact(an, "settle"), _exact(at, "settle"), _exact(ar, "settle")
        numbers = [_ACTUAL.pack(an, at, ar)]
        for line in lines:
            if not line.keys:
                require_keys(lines)
            keys.append(encoded(line.keys[0])[0])
            expires_at = line.expires_at
            numbers.append(_DOUBLE.pack(0.0 if expires_at is None else float(expires_at) + margin))
        if record:  # after the numbers: the script adds it to the outbox stream in the same step
            numbers.append(record)
        packed = b"".join(numbers)
        args = [
            b"$%d\r\n%s\r\n" % (len(raw_id), raw_id),
            _number(now),
            self._settled_ttl,
            b"$%d\r\n%s\r\n" % (len(packed), packed),
        ]
        return Op("settle", keys, args)

    def _settle_command(
        self, reservation: Reservation, actual: Amounts, now: float, record: bytes | None = None
    ) -> Call:
        return single(self._settle_op(reservation, actual, now, record), self._fixed)

    def _renew_command(self, reservation: Reservation, now: float, lease_seconds: float) -> Call:
        args = [_text(reservation.id), _number(now), _number(now + lease_seconds)]
        keys = [_text(self._leases), _text(self._record_prefix + reservation.id)]
        return call("renew", [_number(2), *keys, *args])

    def _reap_command(self, now: float) -> Call:
        return call("reap", [_number(3), *self._fixed, _number(now), _number(FULL_REAP_BATCH)])

    def _keys_command(self, prefix: str, low: bytes, now: float) -> Call:
        high = b"[" + (self._counter_prefix + prefix).encode() + b"\xff"  # \xff never occurs in UTF-8
        args = [bulk(low), bulk(high), _number(LIST_BATCH), _number(now)]
        return call("keys", [_number(2), *self._indexes, *args])

    def _counters_result(self, keys: tuple[str, ...], values: list[bytes | None], now: float) -> dict[str, Counter]:
        result = {}
        for key, value in zip(keys, values, strict=True):
            counter = Counter()
            if value is not None:
                sn, st, sr, rn, rt, rr, drop = _COUNTER.unpack(value)
                # past its drop time and holding nothing: as good as gone (the scripts' rule too)
                if not (0 < drop < now and rn == rt == rr == 0):
                    counter = Counter(Amounts(int(sn), int(st), int(sr)), Amounts(int(rn), int(rt), int(rr)))
            result[key] = counter
        return result

    def _error(self, exc: RedisError) -> StoreError:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        kind = StoreUnreachable if isinstance(exc, RedisConnectionError | RedisTimeoutError) else StoreError
        return kind(f"Redis store ({self._where}): {first_line}")

    # -- sync path: a pooled redis-py connection, the command sent as packed --------------------------

    def _run(self, call: Call) -> Any:
        if self._client is None:
            raise StoreError("Redis store was given only an async client: use the a* methods")
        try:
            for attempt in range(ATTEMPTS):
                try:
                    return self._send(self._scripts.payload(call))
                except ResponseError as exc:
                    remedy = self._scripts.remedy(exc)
                    if remedy is None or attempt == ATTEMPTS - 1:
                        raise
                    self._scripts.fix(self._client, remedy, call.name)
        except RedisError as exc:
            raise self._error(exc) from exc

    def _send(self, payload: bytes) -> Any:
        assert self._client is not None
        pool = self._client.connection_pool
        connection = pool.get_connection()
        try:
            connection.send_packed_command([payload])
            return connection.read_response()
        except ResponseError:  # an error reply: the connection is still in step
            raise
        except BaseException:  # anything else may leave a reply unread: drop the connection
            connection.disconnect()
            raise
        finally:
            pool.release(connection)

    def reserve(
        self, reservation_id: str, lines: tuple[ReserveLine, ...], *, now: float, lease_seconds: float
    ) -> Reservation | Refusal:
        reply = self._run(self._reserve_command(reservation_id, lines, now, lease_seconds))
        if reply[0] == -2 and not self.guarded:  # no marker: an unguarded store starts afresh
            self._marker_call(lambda client: self._marker.mark_fresh(client, new_epoch()))
            reply = self._run(self._reserve_command(reservation_id, lines, now, lease_seconds))
        return self._reserve_result(reply, reservation_id, lines, now, lease_seconds)

    def settle(self, reservation: Reservation, actual: Amounts, *, now: float, record: bytes | None = None) -> str:
        return _OUTCOMES[self._run(self._settle_command(reservation, actual, now, record))]

    def renew(self, reservation: Reservation, *, now: float, lease_seconds: float) -> bool:
        return bool(self._run(self._renew_command(reservation, now, lease_seconds)))

    def record(self, entry_id: str, record: bytes) -> None:
        client = self._sync_client()
        try:
            client.xadd(self._outbox, {"id": entry_id, "r": record})
        except RedisError as exc:
            raise self._error(exc) from exc

    def outbox(self, limit: int) -> list[OutboxEntry]:
        client = self._sync_client()
        try:
            rows = client.xrange(self._outbox, count=limit)
        except RedisError as exc:
            raise self._error(exc) from exc
        return [OutboxEntry(fields[b"id"].decode(), fields[b"r"], ref.decode()) for ref, fields in rows]

    def outbox_done(self, entries: list[OutboxEntry]) -> None:
        if entries:
            client = self._sync_client()
            try:
                client.xdel(self._outbox, *[entry.ref for entry in entries])
            except RedisError as exc:
                raise self._error(exc) from exc

    def _sync_client(self) -> redis.Redis:
        if self._client is None:
            raise StoreError("Redis store was given only an async client: use the a* methods")
        return self._client

    def reap(self, *, now: float) -> int:
        total = 0
        while True:
            count = int(self._run(self._reap_command(now)))
            total += count
            if count < FULL_REAP_BATCH:
                return total

    def counters(self, keys: tuple[str, ...], *, now: float) -> dict[str, Counter]:
        self.reap(now=now)
        assert self._client is not None  # reap checked it
        if not keys:
            return {}
        try:
            values = self._client.mget([self.counter_key(key) for key in keys])
        except RedisError as exc:
            raise self._error(exc) from exc
        return self._counters_result(keys, values, now)

    def keys_with_prefix(self, prefix: str, *, now: float) -> list[str]:
        found: list[str] = []
        low = b"[" + (self._counter_prefix + prefix).encode()
        while True:
            read, last, live = self._run(self._keys_command(prefix, low, now))
            found.extend(key.decode()[len(self._counter_prefix) :] for key in live)
            if read < LIST_BATCH:
                return found
            low = b"(" + last

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # -- async path: the same commands through the channel (or the batcher) ----------------------------

    async def _arun(self, call: Call) -> Any:
        if self._aclient is None:
            raise StoreError("Redis store was given only a sync client: use the sync methods")
        try:
            transport = self._async_transport()
            for attempt in range(ATTEMPTS):
                try:
                    return await transport.call(self._scripts.payload(call))
                except ResponseError as exc:
                    remedy = self._scripts.remedy(exc)
                    if remedy is None or attempt == ATTEMPTS - 1:
                        raise
                    await self._scripts.afix(self._aclient, remedy, call.name)
        except RedisError as exc:
            raise self._error(exc) from exc

    def _async_transport(self) -> ScriptChannel | ScriptBatcher:
        loop = asyncio.get_running_loop()
        if self._transport is None or self._transport_loop is not loop:
            assert self._aclient is not None
            pool = self._aclient.connection_pool
            if self._batch and usable(pool):
                self._transport = ScriptChannel(pool.connection_kwargs)
            else:
                self._transport = ScriptBatcher(self._aclient, pipeline=self._batch)
            self._transport_loop = loop
            self._coalescer = OpCoalescer(self._transport, self._scripts, self._fixed, self._aclient, batch=self._batch)
        return self._transport

    async def _aop(self, op: Op) -> Any:
        """A reserve or settle: concurrent ones of this event loop share a batch call (lua/batch.lua)."""
        if self._aclient is None:
            raise StoreError("Redis store was given only a sync client: use the sync methods")
        try:
            self._async_transport()
            assert self._coalescer is not None
            return await self._coalescer.call(op)
        except RedisError as exc:
            raise self._error(exc) from exc

    async def areserve(
        self, reservation_id: str, lines: tuple[ReserveLine, ...], *, now: float, lease_seconds: float
    ) -> Reservation | Refusal:
        reply = await self._aop(self._reserve_op(reservation_id, lines, now, lease_seconds))
        if reply[0] == -2 and not self.guarded:  # no marker: an unguarded store starts afresh
            try:
                assert self._aclient is not None
                await self._aclient.set(self._marker.key, new_epoch(), nx=True)
            except RedisError as exc:
                raise self._error(exc) from exc
            reply = await self._aop(self._reserve_op(reservation_id, lines, now, lease_seconds))
        return self._reserve_result(reply, reservation_id, lines, now, lease_seconds)

    async def asettle(
        self, reservation: Reservation, actual: Amounts, *, now: float, record: bytes | None = None
    ) -> str:
        return _OUTCOMES[await self._aop(self._settle_op(reservation, actual, now, record))]

    async def arecord(self, entry_id: str, record: bytes) -> None:
        if self._aclient is None:
            raise StoreError("Redis store was given only a sync client: use the sync methods")
        try:
            transport = self._async_transport()
            if isinstance(transport, ScriptChannel):
                parts = [_XADD, _text(self._outbox), _STAR, _ID, _text(entry_id), _R, bulk(record)]
                await transport.call(b"*%d\r\n%s" % (len(parts), b"".join(parts)))
            else:
                await self._aclient.xadd(self._outbox, {"id": entry_id, "r": record})
        except RedisError as exc:
            raise self._error(exc) from exc

    async def arenew(self, reservation: Reservation, *, now: float, lease_seconds: float) -> bool:
        return bool(await self._arun(self._renew_command(reservation, now, lease_seconds)))

    async def areap(self, *, now: float) -> int:
        total = 0
        while True:
            count = int(await self._arun(self._reap_command(now)))
            total += count
            if count < FULL_REAP_BATCH:
                return total

    async def acounters(self, keys: tuple[str, ...], *, now: float) -> dict[str, Counter]:
        await self.areap(now=now)
        assert self._aclient is not None  # areap checked it
        if not keys:
            return {}
        try:
            transport = self._async_transport()
            if isinstance(transport, ScriptChannel):  # pipelined with the scripts: no pooled connection
                parts = [_MGET, *(self._encoded(key)[0] for key in keys)]
                values = await transport.call(b"*%d\r\n%s" % (len(parts), b"".join(parts)))
            else:
                values = await self._aclient.mget([self.counter_key(key) for key in keys])
        except RedisError as exc:
            raise self._error(exc) from exc
        return self._counters_result(keys, values, now)

    async def akeys_with_prefix(self, prefix: str, *, now: float) -> list[str]:
        found: list[str] = []
        low = b"[" + (self._counter_prefix + prefix).encode()
        while True:
            read, last, live = await self._arun(self._keys_command(prefix, low, now))
            found.extend(key.decode()[len(self._counter_prefix) :] for key in live)
            if read < LIST_BATCH:
                return found
            low = b"(" + last

    async def aclose(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            self._coalescer = None
        if self._aclient is not None:
            await self._aclient.aclose()
        self.close()


def _exact(value: int, what: str) -> int:
    if not 0 <= value <= MAX_EXACT:
        raise StoreError(f"{what}: {value} is outside 0..2**53-1, the exact integer range of Redis Lua scripts")
    return value
