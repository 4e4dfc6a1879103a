"""An incremental Server-Sent Events parser: bytes in, events out, no I/O.

Follows the WHATWG event-stream rules: lines end in CRLF, LF or CR (a CR at the end of one chunk may be half
of a CRLF split across chunks); `:` starts a comment; `data:` lines of one event join with "\\n"; an empty
line dispatches the event, unless it has no data.
"""

from __future__ import annotations

from typing import NamedTuple


class SSEEvent(NamedTuple):
    """One dispatched event (a tuple: cheap to build, and built for every event of every stream)."""

    data: str
    event: str | None = None
    id: str | None = None

    @property
    def is_done(self) -> bool:
        """OpenAI's end-of-stream sentinel, `data: [DONE]`."""
        return self.data == "[DONE]"


class SSEParser:
    """Feed raw bytes as they arrive; `feed` returns the events completed by them."""

    __slots__ = ("_buffer", "_cr_pending", "_data", "_event", "_id", "_started")

    def __init__(self) -> None:
        self._buffer = b""
        self._cr_pending = False  # last chunk ended in CR: a leading LF in the next chunk belongs to it
        self._started = False
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not chunk:
            return []
        if not self._started:
            self._started = True
            if chunk.startswith(b"\xef\xbb\xbf"):
                chunk = chunk[3:]
        if self._cr_pending:
            self._cr_pending = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        buffer = self._buffer + chunk if self._buffer else chunk
        cut = max(buffer.rfind(b"\n"), buffer.rfind(b"\r"))
        if cut < 0:
            self._buffer = buffer
            return []
        complete, self._buffer = buffer[: cut + 1], buffer[cut + 1 :]
        self._cr_pending = complete.endswith(b"\r")
        events: list[SSEEvent] = []
        # The common lines (`data: ...`, `event: ...`, blank) are handled inline: this runs on every streamed byte.
        for line in complete.splitlines():
            if line.startswith(b"data: "):
                self._data.append(line[6:].decode("utf-8", errors="replace"))
            elif not line:
                if self._data:
                    events.append(SSEEvent("\n".join(self._data), self._event, self._id))
                    self._data = []
                self._event = None
            elif line.startswith(b"event: "):
                self._event = line[7:].decode("utf-8", errors="replace")
            else:
                self._line(line.decode("utf-8", errors="replace"))
        return events

    def close(self) -> list[SSEEvent]:
        """End of input: a last event without its blank line is still dispatched, as a saved file ends there."""
        events: list[SSEEvent] = []
        if self._buffer:
            line, self._buffer = self._buffer, b""
            event = self._line(line.decode("utf-8", errors="replace"))
            if event is not None:
                events.append(event)
        event = self._line("")
        if event is not None:
            events.append(event)
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            if not self._data:
                self._event = None
                return None
            event = SSEEvent("\n".join(self._data), self._event, self._id)
            self._data = []
            self._event = None
            return event
        if line[0] == ":":
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None


def parse_sse(data: bytes) -> list[SSEEvent]:
    """Every event of a complete stream."""
    parser = SSEParser()
    return parser.feed(data) + parser.close()
