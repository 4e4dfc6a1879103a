"""Serve an emulator on a free loopback port from a background thread, for tests and the demo."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from fiscus.emulator.app import create_app
from fiscus.emulator.config import EmulatorConfig

_START_TIMEOUT_S = 10.0


@contextmanager
def run_in_thread(config: EmulatorConfig | None = None, *, host: str = "127.0.0.1") -> Iterator[str]:
    """Start uvicorn on a free port of `host`, yield the base URL (no trailing slash), then stop it."""
    import uvicorn  # the server is only needed when one is started

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="fiscus-emulator", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the emulator did not start")
            time.sleep(0.005)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=_START_TIMEOUT_S)
        sock.close()
