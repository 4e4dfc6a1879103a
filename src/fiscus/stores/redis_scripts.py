"""The Redis store's Lua scripts as the server runs them: one Redis Functions library called by FCALL (Redis 7+),
else each script by EVALSHA with lib.lua prepended.

Why functions first: EVALSHA runs lib.lua's definitions again on every call (a dozen closures), FCALL calls
functions whose helpers were built once when the library loaded — a few microseconds of server time per call.
The library's name carries a hash of the code, so two versions of fiscus on one server each keep their own.
Where FCALL is unknown (Redis before 7) or forbidden by an ACL, a store falls back to EVALSHA for good. Either
way a script or the library is loaded (again) when the server says it lacks it (a restart without persistence,
a failover, a flush) and the call is sent again.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any, NamedTuple

import redis
import redis.asyncio
from redis.exceptions import NoScriptError, ResponseError

from fiscus.stores.redis_channel import bulk

LAYOUT = "v2"  # in every key and the library's name: bump it when the meaning of stored values changes
NAMES = ("reserve", "settle", "batch", "renew", "reap", "keys", "restore")
ATTEMPTS = 3  # a call may need the library loaded, then a fall back to EVALSHA and that script loaded
_EVALSHA = bulk(b"EVALSHA")
_FCALL = bulk(b"FCALL")


def _sources() -> tuple[str, dict[str, str]]:
    folder = resources.files("fiscus.stores") / "lua"
    return (folder / "lib.lua").read_text(), {name: (folder / f"{name}.lua").read_text() for name in NAMES}


def _library(lib: str, bodies: dict[str, str]) -> tuple[str, str]:
    """(library name, code): lib.lua once, then each script's body as a registered function."""
    digest = hashlib.sha1((lib + "".join(bodies.values())).encode()).hexdigest()[:12]
    library = f"fiscus_{LAYOUT}_{digest}"
    functions = "".join(
        f"redis.register_function('{library}_{name}', function(KEYS, ARGV)\n{body}\nend)\n"
        for name, body in bodies.items()
    )
    return library, f"#!lua name={library}\n{lib}\n{functions}"


_LIB, _BODIES = _sources()
SCRIPTS = {name: _LIB + "\n" + body for name, body in _BODIES.items()}  # for EVALSHA
_SHA = {name: bulk(hashlib.sha1(source.encode()).hexdigest().encode()) for name, source in SCRIPTS.items()}
LIBRARY, LIBRARY_CODE = _library(_LIB, _BODIES)
_FUNCTION = {name: bulk(f"{LIBRARY}_{name}".encode()) for name in NAMES}


class Call(NamedTuple):
    """A script call without its verb: `FCALL <function>` or `EVALSHA <sha>` goes in front when it is sent."""

    name: str
    parts: int  # RESP bulk strings in `body`: numkeys, keys, args
    body: bytes


def call(name: str, parts: list[bytes]) -> Call:
    return Call(name, len(parts), b"".join(parts))


class Op(NamedTuple):
    """A reserve or settle that can ride in a batch: its own keys (from its record key on) and its four
    arguments, RESP-packed; the three keys every operation shares are added when it is sent."""

    name: str  # "reserve" or "settle"
    keys: list[bytes]
    args: list[bytes]


_KIND = {"reserve": bulk(b"r"), "settle": bulk(b"s")}
_COUNTS = [bulk(str(n).encode()) for n in range(256)]  # key counts, formatted once


def _count(n: int) -> bytes:
    return _COUNTS[n] if n < 256 else bulk(str(n).encode())


def single(op: Op, fixed: tuple[bytes, ...]) -> Call:
    """The operation as its own script call (reserve.lua, settle.lua)."""
    return call(op.name, [_count(len(fixed) + len(op.keys)), *fixed, *op.keys, *op.args])


def batch(ops: list[Op], fixed: tuple[bytes, ...]) -> Call:
    """Several operations as one call of batch.lua: every key first, then per operation its kind, key count and
    arguments."""
    keys: list[bytes] = [*fixed]
    args: list[bytes] = []
    for op in ops:
        keys.extend(op.keys)
        args.append(_KIND[op.name])
        args.append(_count(len(op.keys)))
        args.extend(op.args)
    return call("batch", [_count(len(keys)), *keys, *args])


class Scripts:
    """How one store calls the scripts; `functions` turns False for good once the server lacks FCALL."""

    def __init__(self, *, functions: bool = True) -> None:
        self.functions = functions

    def payload(self, call: Call) -> bytes:
        head = _FCALL + _FUNCTION[call.name] if self.functions else _EVALSHA + _SHA[call.name]
        return b"*%d\r\n%s%s" % (call.parts + 2, head, call.body)

    def remedy(self, exc: ResponseError) -> str | None:
        """What to do about an error reply before sending the call again: load the script ("script") or the library
        ("library"), or stop using FCALL ("evalsha"). None: a real error, for the caller."""
        if isinstance(exc, NoScriptError):
            return "script"
        message = str(exc)
        if self.functions and "Function not found" in message:
            return "library"
        if self.functions and _forbidden(message):
            return "evalsha"
        return None

    def fix(self, client: redis.Redis, remedy: str, name: str) -> None:
        if remedy == "script":
            client.script_load(SCRIPTS[name])
        elif remedy == "library":
            try:
                client.function_load(LIBRARY_CODE, replace=True)
            except ResponseError as exc:
                self._give_up(exc)
        else:
            self.functions = False

    async def afix(self, client: redis.asyncio.Redis, remedy: str, name: str) -> None:
        if remedy == "script":
            await client.script_load(SCRIPTS[name])
        elif remedy == "library":
            try:
                await client.function_load(LIBRARY_CODE, replace=True)
            except ResponseError as exc:
                self._give_up(exc)
        else:
            self.functions = False

    def _give_up(self, exc: ResponseError) -> Any:
        if not _forbidden(str(exc)):
            raise exc
        self.functions = False  # FUNCTION LOAD missing or forbidden


def _forbidden(message: str) -> bool:
    return "unknown command" in message or "NOPERM" in message
