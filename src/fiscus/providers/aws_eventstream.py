"""AWS's binary event-stream framing (`application/vnd.amazon.eventstream`), as Bedrock streams answers.

A message is a prelude (total length, headers length, CRC32 of those 8 bytes), headers, a payload and a CRC32 of
everything before it; integers are big-endian. Headers are `name-length name type value`; Bedrock sends string
headers only (`:event-type`, `:message-type`, `:content-type`, `:exception-type`), so other header types are
skipped by their size. Sans-IO: bytes in, messages out.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

PRELUDE = 12
_CRC = 4
MAX_MESSAGE = 16 * 1024 * 1024  # the framing's own limit: 16 MB per message
_STRING = 7
# Fixed sizes of the non-string header value types (true, false, byte, short, int, long, -, -, timestamp, uuid).
_FIXED = {0: 0, 1: 0, 2: 1, 3: 2, 4: 4, 5: 8, 8: 8, 9: 16}


class EventStreamError(ValueError):
    """Bytes that are not a well-formed event stream (bad checksum, impossible lengths, cut short)."""


@dataclass(frozen=True, slots=True)
class Message:
    headers: dict[str, str]
    payload: bytes

    @property
    def kind(self) -> str:
        """`event`, `exception` or `error` (`:message-type`)."""
        return self.headers.get(":message-type", "event")


def encode(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One message with string headers."""
    head = b"".join(
        struct.pack(">B", len(name.encode())) + name.encode() + struct.pack(">BH", _STRING, len(value.encode()))
        + value.encode()
        for name, value in headers.items()
    )  # fmt: skip
    total = PRELUDE + len(head) + len(payload) + _CRC
    prelude = struct.pack(">II", total, len(head))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + head + payload
    return body + struct.pack(">I", zlib.crc32(body))


class Decoder:
    """Feed bytes as they arrive; get back the messages they complete."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes received that do not yet make a whole message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        out: list[Message] = []
        while len(self._buffer) >= PRELUDE:
            total, head_len, prelude_crc = struct.unpack_from(">III", self._buffer)
            if zlib.crc32(self._buffer[:8]) != prelude_crc:
                raise EventStreamError("event-stream prelude checksum mismatch")
            if total > MAX_MESSAGE or total < PRELUDE + _CRC + head_len:
                raise EventStreamError(f"event-stream message of impossible length {total}")
            if len(self._buffer) < total:
                break
            frame = bytes(self._buffer[:total])
            del self._buffer[:total]
            (crc,) = struct.unpack_from(">I", frame, total - _CRC)
            if zlib.crc32(frame[: total - _CRC]) != crc:
                raise EventStreamError("event-stream message checksum mismatch")
            headers = _headers(frame[PRELUDE : PRELUDE + head_len])
            out.append(Message(headers, frame[PRELUDE + head_len : total - _CRC]))
        return out


def _headers(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    at = 0
    try:
        while at < len(data):
            name_len = data[at]
            name = data[at + 1 : at + 1 + name_len].decode()
            at += 1 + name_len
            kind = data[at]
            at += 1
            if kind in (6, _STRING):  # byte array, string: 2-byte length
                (size,) = struct.unpack_from(">H", data, at)
                value = data[at + 2 : at + 2 + size]
                at += 2 + size
                if kind == _STRING:
                    out[name] = value.decode()
            elif kind in _FIXED:
                at += _FIXED[kind]
            else:
                raise EventStreamError(f"event-stream header {name!r} has unknown type {kind}")
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise EventStreamError(f"event-stream headers malformed ({exc})") from None
    return out
