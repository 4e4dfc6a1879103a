"""Fixtures: the emulator on loopback, a recorder that echoes what it received, a fake clock and sleep."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from aiohttp import web

from fiscus.config import ProviderConfig
from fiscus.emulator import EmulatorConfig, run_in_thread

KEYS = {"OPENAI_KEY": "sk-test-openai", "ANTHROPIC_KEY": "sk-ant-test", "GEMINI_KEY": "gm-test", "AZURE_KEY": "az-test"}


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    """Base URL of an emulator that accepts only the keys in KEYS."""
    with run_in_thread(EmulatorConfig(api_keys=frozenset(KEYS.values()))) as base_url:
        yield base_url


def providers(base: str, **overrides: dict[str, Any]) -> dict[str, ProviderConfig]:
    """One provider of each emulated kind pointed at `base`; `overrides` patch fields per provider."""
    raw: dict[str, dict[str, Any]] = {
        "openai": {"kind": "openai", "base_url": f"{base}/v1", "api_key_env": "OPENAI_KEY"},
        "anthropic": {"kind": "anthropic", "base_url": f"{base}/v1", "api_key_env": "ANTHROPIC_KEY"},
        "gemini": {"kind": "gemini", "base_url": f"{base}/v1beta", "api_key_env": "GEMINI_KEY"},
        "local": {"kind": "openai-compatible", "base_url": f"{base}/v1", "api_key_env": "OPENAI_KEY"},
    }
    for name, fields in overrides.items():
        raw.setdefault(name, {}).update(fields)
    return {name: ProviderConfig(**fields) for name, fields in raw.items()}


class FakeTime:
    """A clock that only moves when the code under test sleeps (or a test advances it)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def recorder() -> AsyncIterator[str]:
    """An HTTP server answering every POST with JSON describing the request it got (path, query, headers)."""

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        seen = {
            "path": request.path,
            "query": dict(request.query),
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "body": body.decode(),
        }
        return web.Response(body=orjson.dumps(seen), content_type="application/json")

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await runner.cleanup()
