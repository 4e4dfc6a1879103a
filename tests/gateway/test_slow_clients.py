"""A client that trickles its request body holds its connection for `gateway.body_timeout_s` at most, and at most
`gateway.max_slow_bodies` such requests are waited for at once: the next slow one is refused as soon as it is
slow. Each refusal is a 408 in the client's protocol, closes the connection and reserves nothing."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import orjson
import pytest

from fiscus.config import GatewayConfig
from tests.gateway.conftest import Real, real_gateway

POLICY = """
version: 1
budgets:
  - {name: growth-day, scope: {team: growth}, window: day, limit: {usd: 100}}
"""
CHAT = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})


@pytest.fixture
def real(tmp_path: Path, emulator_url: str):
    update = {"gateway": GatewayConfig(body_timeout_s=3.0, max_slow_bodies=2)}
    with real_gateway(tmp_path, emulator_url, POLICY, f"sqlite:///{tmp_path}/budget.db", config_update=update) as r:
        yield r


class Trickler:
    """A raw connection that sends the headers and then one body byte every `every_s` until told to stop."""

    def __init__(self, real: Real, path: str = "/v1/chat/completions", every_s: float = 0.2) -> None:
        url = urlparse(real.url)
        self.sock = socket.create_connection((url.hostname, url.port))
        self.sock.settimeout(10)
        head = (
            f"POST {path} HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {real.key}\r\nx-api-key: {real.key}\r\n"
            f"anthropic-version: 2023-06-01\r\ncontent-type: application/json\r\ncontent-length: {len(CHAT)}\r\n\r\n"
        )
        self.sock.sendall(head.encode())
        self.started = time.monotonic()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._drip, args=(every_s,), daemon=True)
        self.thread.start()

    def _drip(self, every_s: float) -> None:
        for byte in CHAT[:-1]:  # never the last byte: the body never completes
            if self.stop.wait(every_s):
                return
            try:
                self.sock.send(bytes([byte]))
            except OSError:
                return

    def answer(self) -> tuple[float, int, dict, bool]:
        """(seconds from the start, status, JSON body, whether the gateway then closed the connection)."""
        data = b""
        while b"\r\n\r\n" not in data:
            data += self.sock.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        elapsed = time.monotonic() - self.started
        length = int(
            next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        )
        while len(body) < length:
            body += self.sock.recv(65536)
        self.stop.set()
        try:
            closed = self.sock.recv(1) == b""
        except ConnectionResetError:
            closed = True
        self.sock.close()
        return elapsed, int(head.split(b" ")[1]), orjson.loads(body), closed


def test_a_trickled_body_is_cut_off_at_the_body_timeout(real: Real) -> None:
    chat, messages = Trickler(real), Trickler(real, "/v1/messages")
    elapsed, status, body, closed = chat.answer()
    assert status == 408 and closed and 2.9 < elapsed < 4.5
    assert body["error"]["code"] == "request_timeout" and "3 s" in body["error"]["message"]
    elapsed, status, body, closed = messages.answer()
    assert status == 408 and closed and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error" and "within 3 s" in body["error"]["message"]
    assert real.events() == []  # refused before admission: nothing reserved, nothing recorded
    assert all(s.reserved.nanos == 0 and s.reserved.requests == 0 for s in real.governor.status())


def test_past_max_slow_bodies_the_next_slow_request_is_refused_at_once(real: Real) -> None:
    first, second = Trickler(real), Trickler(real)
    time.sleep(1.3)  # both are slow now
    third = Trickler(real)
    elapsed, status, body, closed = third.answer()
    assert status == 408 and closed and 0.9 < elapsed < 2.0  # refused when it became slow, not at the timeout
    assert "too many requests are slow" in body["error"]["message"]
    # A client that sends its body at once is served meanwhile.
    client = real.openai()
    assert client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]).id
    for slow in (first, second):
        elapsed, status, body, closed = slow.answer()
        assert status == 408 and "within 3 s" in body["error"]["message"]
    assert len(real.events()) == 1
