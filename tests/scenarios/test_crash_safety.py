"""kill -9 loses nothing: the gateway on SQLite under 16 concurrent clients is killed mid-run and restarted;
every call a client got back with HTTP 200 is in the ledger, and the ledger and the budget counters agree
exactly (requests, nano-dollars, tokens).

A call can also be settled and then killed before its answer left: the provider did the work, so it is in the
ledger without the client having seen it — at most one per client in flight at the kill."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx

from fiscus.config import load_config
from fiscus.emulator import EmulatorConfig, run_in_thread
from fiscus.events.cost_event import CallStatus
from fiscus.governor import Governor
from fiscus.keys import KeyRing, open_key_store
from fiscus.ledger import open_ledger
from fiscus.money import to_nanos

CLIENTS = 16
KILL_AFTER_S = 2.5  # at the earliest, and once MIN_ANSWERED calls were answered (a loaded machine is slower)
MIN_ANSWERED = 100
UPSTREAM_KEY_ENV = "FISCUS_CRASH_TEST_UPSTREAM_KEY"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gateway(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, UPSTREAM_KEY_ENV: "sk-emulator"}
    fiscus = str(Path(sys.executable).with_name("fiscus"))
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [fiscus, "serve", "--config", str(config), "--port", str(port), "--workers", "1"],
            stdout=out,
            stderr=out,
            env=env,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"the gateway did not start: {log.read_text()}")


def test_answered_calls_survive_kill_9_and_restart_exactly(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(
        "version: 1\nbudgets:\n  - {name: growth-day, scope: {team: growth}, window: day, limit: {usd: 1000}}\n",
        encoding="utf-8",
    )
    with run_in_thread(EmulatorConfig()) as emulator:
        config = tmp_path / "fiscus.yaml"
        config.write_text(
            textwrap.dedent(
                f"""
                ledger: sqlite:///{tmp_path}/ledger.db
                budget_store: sqlite:///{tmp_path}/budgets.db
                keys: sqlite:///{tmp_path}/keys.db
                policy: policy.yaml
                providers:
                  openai: {{kind: openai, base_url: "{emulator}/v1", api_key_env: {UPSTREAM_KEY_ENV},
                            models: ["gpt-4o-mini"], max_retries: 0}}
                gateway: {{pace_check_s: 0, alert_check_s: 0}}
                """
            ),
            encoding="utf-8",
        )
        loaded = load_config(config)
        secret, _ = KeyRing(open_key_store(loaded.keys)).create(agent="crash", team="growth", environment="test")
        port, log = free_port(), tmp_path / "gateway.log"
        gateway = start_gateway(config, port, log)
        answered: list[str] = []
        stop = threading.Event()

        def client(n: int) -> None:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}/v1", timeout=10) as http:
                step = 0
                while not stop.is_set():
                    body = {
                        "model": "gpt-4o-mini",
                        "max_tokens": 16,
                        "messages": [{"role": "user", "content": f"c{n} {step}"}],
                    }
                    try:
                        reply = http.post("/chat/completions", json=body, headers={"authorization": f"Bearer {secret}"})
                    except httpx.HTTPError:
                        return  # the gateway is gone
                    assert reply.status_code == 200, reply.text
                    answered.append(reply.headers["x-fiscus-request-id"])
                    step += 1

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        started = time.monotonic()
        while time.monotonic() - started < KILL_AFTER_S or (
            len(answered) < MIN_ANSWERED and time.monotonic() - started < 120
        ):
            time.sleep(0.05)
        gateway.send_signal(signal.SIGKILL)
        gateway.wait()
        stop.set()
        for thread in threads:
            thread.join()
        assert len(answered) >= MIN_ANSWERED  # the run did real work before the kill

    # The restart: a gateway worker's start builds its governor from the config, whose ledger writer drains what
    # the kill left in the store's outbox before anything else (the HTTP server adds nothing to that).
    governor = Governor.from_config(loaded)
    try:
        assert governor.ledger.flush(timeout=10)  # type: ignore[union-attr]
        (status,) = governor.status()
    finally:
        governor.close()
    with open_ledger(loaded.ledger) as ledger:
        events = [e for e in ledger.events() if e.status is CallStatus.OK]
    ids = {e.id for e in events}
    assert len(ids) == len(events)
    assert set(answered) <= ids, f"{len(set(answered) - ids)} answered calls missing from the ledger"
    assert len(events) - len(answered) <= CLIENTS
    assert status.spent.requests == len(events)
    assert status.spent.nanos == sum(to_nanos(e.cost.total) for e in events)
    assert status.spent.tokens == sum(e.usage.total_tokens for e in events)
    print(f"answered {len(answered)}, ledger {len(events)}, counters {status.spent.requests}")
