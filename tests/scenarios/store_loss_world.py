"""The store-loss scenarios' world: the emulator, a gateway of several workers (`fiscus serve`) on a SQLite file, a
private Redis (`redis-server` on a free port, nothing on disk, so a FLUSHALL or a kill there touches no one
else) or the shared Redis under a key prefix of the test's own, a SQLite or PostgreSQL ledger, a key for one
agent with a $0.05 day budget, and the ledger and counters read back."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from fiscus.config import load_config
from fiscus.events.cost_event import CallStatus
from fiscus.keys import KeyRing, open_key_store
from fiscus.ledger import open_ledger

UPSTREAM_KEY_ENV = "FISCUS_STORE_LOSS_UPSTREAM_KEY"
DAY_LIMIT = Decimal("0.05")
# $100 per million input tokens and $200 per million output: a call of the emulator's 24-token answer costs
# about half a cent, so the day budget is spent in about ten calls.
POLICY = """\
version: 1
budgets:
  - name: agent-day
    scope: {agent: researcher}
    window: day
    limit: {usd: 0.05}
    thresholds: []
    on_exhausted: block
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """A redis-server of this test's own: keeps nothing on disk, as many deployments run it."""

    def __init__(self, tmp: Path) -> None:
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed")
        self.port = free_port()
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no", "--dir", str(self.tmp)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url).ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise AssertionError("the private redis-server did not start")

    def flushall(self) -> None:
        import redis

        client = redis.Redis.from_url(self.url)
        client.flushall()  # this test's private instance only
        client.close()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.kill()


class Gateway:
    def __init__(
        self,
        tmp: Path,
        emulator: str,
        store: str,
        on_store_loss: str,
        workers: int = 2,
        ledger: str | None = None,
        policy: str = POLICY,
    ) -> None:
        self.tmp = tmp
        (tmp / "policy.yaml").write_text(policy, encoding="utf-8")
        self.config = tmp / "fiscus.yaml"
        self.config.write_text(
            textwrap.dedent(
                f"""
                ledger: "{ledger or f"sqlite:///{tmp}/ledger.db"}"
                budget_store: {store}
                store: {{on_store_loss: {on_store_loss}}}
                keys: sqlite:///{tmp}/keys.db
                policy: policy.yaml
                pricing:
                  models:
                    - {{provider: openai, model: loss-test, input_mtok: 100, output_mtok: 200}}
                providers:
                  openai: {{kind: openai, base_url: "{emulator}/v1", api_key_env: {UPSTREAM_KEY_ENV},
                            models: ["loss-test"], max_retries: 0}}
                gateway: {{pace_check_s: 0, alert_check_s: 0}}
                review: {{weekly: {{enabled: false}}}}
                """
            ),
            encoding="utf-8",
        )
        self.loaded = load_config(self.config)
        self.secret, _ = KeyRing(open_key_store(self.loaded.keys)).create(
            agent="researcher", team="growth", environment="test"
        )
        self.port = free_port()
        self.log = tmp / "gateway.log"
        env = {**os.environ, UPSTREAM_KEY_ENV: "sk-emulator"}
        fiscus = str(Path(sys.executable).with_name("fiscus"))
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [fiscus, "serve", "--config", str(self.config), "--port", str(self.port), "--workers", str(workers)],
                stdout=out,
                stderr=out,
                env=env,
            )
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.http = httpx.Client(base_url=self.base_url, timeout=10)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if self.http.get("/models").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"the gateway did not start: {self.log.read_text()}")

    def call(self, n: int = 0) -> httpx.Response:
        body = {"model": "loss-test", "max_tokens": 30, "messages": [{"role": "user", "content": f"step {n}"}]}
        return self.http.post("/chat/completions", json=body, headers={"authorization": f"Bearer {self.secret}"})

    def call_fresh(self, n: int = 0) -> httpx.Response:
        """`call` on a connection of its own, so the kernel hands each call to any of the workers."""
        body = {"model": "loss-test", "max_tokens": 30, "messages": [{"role": "user", "content": f"step {n}"}]}
        headers = {"authorization": f"Bearer {self.secret}", "connection": "close"}
        return httpx.post(f"{self.base_url}/chat/completions", json=body, headers=headers, timeout=10)

    def spend_the_day(self, *, fresh: bool = False) -> int:
        """Calls until the day budget refuses one; how many were served (`fresh`: each on a new connection)."""
        for n in range(200):
            reply = self.call_fresh(n) if fresh else self.call(n)
            if reply.status_code == 429:
                return n
            assert reply.status_code == 200, reply.text
        raise AssertionError("the day budget never refused")

    def ledger_spent(self) -> Decimal:
        """The day's spend in the ledger (what the workers' writers have moved there)."""
        with open_ledger(self.loaded.ledger) as ledger:
            return sum((e.cost.total for e in ledger.events() if e.status is CallStatus.OK), Decimal(0))

    def ledger_ok_calls(self) -> int:
        with open_ledger(self.loaded.ledger) as ledger:
            return sum(e.status is CallStatus.OK for e in ledger.events())

    def announced(self) -> int:
        return self.log.read_text(errors="replace").count("lost its state:")

    def rebuild(self) -> str:
        fiscus = str(Path(sys.executable).with_name("fiscus"))
        done = subprocess.run(
            [fiscus, "budgets", "rebuild", "--config", str(self.config)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def stop(self) -> None:
        self.http.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait_for(ledger_calls: int, gateway: Gateway, timeout: float = 10.0) -> None:
    """Until the ledger has this many served calls (the writers move the outbox within a flush interval)."""
    deadline = time.monotonic() + timeout
    while gateway.ledger_ok_calls() < ledger_calls and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gateway.ledger_ok_calls() == ledger_calls
