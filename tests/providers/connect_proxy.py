"""A tiny forward proxy on loopback for the tests: CONNECT tunnels (https) and absolute-form requests (http), with
optional Basic auth. It resolves host names from its own table only, so a provider named `provider.invalid` can
be reached through it and not without it. It records what it was asked and every byte a client sent it."""

from __future__ import annotations

import base64
import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field


@dataclass
class ProxyLog:
    requests: list[str] = field(default_factory=list)  # each request line, e.g. "CONNECT provider.invalid:443"
    authorizations: list[str | None] = field(default_factory=list)
    client_bytes: bytearray = field(default_factory=bytearray)  # everything clients sent, tunnels included
    lock: threading.Lock = field(default_factory=threading.Lock)


def _pipe(source: socket.socket, sink: socket.socket, log: ProxyLog | None) -> None:
    try:
        while chunk := source.recv(65536):
            if log is not None:
                with log.lock:
                    log.client_bytes += chunk
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@contextmanager
def connect_proxy(hosts: dict[str, str], *, credentials: str | None = None) -> Iterator[tuple[str, ProxyLog]]:
    """Serve a proxy; yield (its `host:port`, the log). `hosts` maps the names it resolves to addresses;
    `credentials` ("user:password") makes it answer 407 to a request without them."""
    log = ProxyLog()
    expected = "Basic " + base64.b64encode(credentials.encode()).decode() if credentials else None

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            client: socket.socket = self.request
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(65536)
                if not chunk:
                    return
                head += chunk
            with log.lock:
                log.client_bytes += head
            lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            with log.lock:
                log.requests.append(f"{method} {target}")
                log.authorizations.append(fields.get("proxy-authorization"))
            if expected is not None and fields.get("proxy-authorization") != expected:
                client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n")
                return
            if method == "CONNECT":
                authority, rest = target, b""
            else:  # absolute form: http://host:port/path
                authority = target.split("://", 1)[1].split("/", 1)[0]
                rest = head
            name, _, port = authority.rpartition(":")
            address = hosts.get(name)
            if address is None:
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
                return
            upstream = socket.create_connection((address, int(port)))
            if method == "CONNECT":
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                upstream.sendall(rest)
            back = threading.Thread(target=_pipe, args=(upstream, client, None), daemon=True)
            back.start()
            _pipe(client, upstream, log)
            back.join(timeout=5)
            upstream.close()

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", log
    finally:
        server.shutdown()
        server.server_close()
