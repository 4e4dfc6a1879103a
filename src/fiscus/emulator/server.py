"""Serve an emulator on a free loopback port from a background thread, for tests and the demo."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fiscus.emulator.app import create_app
from fiscus.emulator.config import EmulatorConfig
from fiscus.serving import serve_in_thread


@contextmanager
def run_in_thread(config: EmulatorConfig | None = None, *, host: str = "127.0.0.1") -> Iterator[str]:
    """Start uvicorn on a free port of `host`, yield the base URL (no trailing slash), then stop it."""
    with serve_in_thread(create_app(config), name="emulator", host=host, lifespan="off") as url:
        yield url
