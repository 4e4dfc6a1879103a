"""Serve an ASGI app on a free loopback port from a background thread: the emulator and the gateway in tests,
the demo and benchmarks."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

START_TIMEOUT_S = 10.0


@contextmanager
def serve_in_thread(
    app: Any,
    *,
    name: str,
    host: str = "127.0.0.1",
    lifespan: str = "on",
    tls: tuple[str, str] | None = None,
    url_host: str | None = None,
) -> Iterator[str]:
    """Start uvicorn on a free port of `host`, yield the base URL (no trailing slash), then stop it. `tls`:
    (certificate file, key file) to serve HTTPS; `url_host`: the name to put in the URL instead of `host` (the
    name the certificate is for)."""
    import uvicorn  # the server is only needed when one is started

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    certfile, keyfile = tls if tls is not None else (None, None)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan=lifespan,
            timeout_graceful_shutdown=2,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"fiscus-{name}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {name} did not start")
            time.sleep(0.005)
        yield f"{'https' if tls else 'http'}://{url_host or host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT_S)
        sock.close()
