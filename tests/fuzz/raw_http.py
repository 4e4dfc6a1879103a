"""A raw HTTP/1.1 client for hostile requests: it sends exactly the bytes given (control characters in headers,
a lying content-length, invalid UTF-8) where a real client library would refuse, and reads the answer to the
connection's end."""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def from_server(self) -> bool:
        """Answered by uvicorn's own parser (a request it could not read as HTTP), not by the gateway's app."""
        return self.status == 400 and self.body == b"Invalid HTTP request received."


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)


def _send_all(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the gateway stopped reading: its answer says why
        sock.sendall(data)


def send(
    address: tuple[str, int], method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> RawAnswer:
    """One request on a fresh connection (`connection: close`), the whole answer back."""
    head = f"{method} {path} HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\n".encode()
    head += b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    if not any(name.lower() in (b"content-length", b"transfer-encoding") for name, _ in headers):
        head += b"content-length: %d\r\n" % len(body)
    with socket.create_connection(address, timeout=30) as sock:
        # The body goes from a thread of its own: a gateway that refuses it early answers while it is still
        # being sent, and the answer must be read before the connection is torn down.
        sender = threading.Thread(target=_send_all, args=(sock, head + b"\r\n" + body), daemon=True)
        sender.start()
        data = bytearray()
        try:
            while chunk := sock.recv(1 << 20):
                data += chunk
        except ConnectionResetError:
            if not data:
                raise
        sender.join(timeout=30)
    raw_head, _, payload = bytes(data).partition(b"\r\n\r\n")
    lines = raw_head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if fields.get("transfer-encoding") == "chunked":
        payload = _dechunk(payload)
    return RawAnswer(status, fields, payload)
