"""A fleet on one Redis: `fiscus serve --workers N` in a subprocess and SDK agents in processes of their own, all on
one fiscus.yaml, for the account-wide scenarios."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx

UPSTREAM_KEY_ENV = "FISCUS_FLEET_TEST_UPSTREAM_KEY"

# One SDK process: `n` calls of `agent`, each a new question, a pause between them; prints what each call got.
SDK_AGENT = """
import json, sys, time
import openai, fiscus
config, emulator, agent, n, first, pause = sys.argv[1:7]
client = fiscus.wrap(
    openai.OpenAI(base_url=emulator + "/v1", api_key="sk-emulator", max_retries=0),
    agent=agent, team="growth", config=config, on_exhausted="raise",
)
got = []
for i in range(int(n)):
    try:
        client.chat.completions.create(
            model="gpt-4o-mini", max_tokens=16,
            messages=[{"role": "user", "content": f"Analyse module {int(first) + i:04d}"}],
        )
        got.append("ok")
    except (fiscus.BudgetBlocked, fiscus.GuardRefused) as exc:
        got.append("refused: " + str(exc)[:200])
    time.sleep(float(pause))
print(json.dumps(got))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(tmp: Path, *, emulator: str, store: str, guards: str, policy: str) -> Path:
    (tmp / "policy.yaml").write_text(policy, encoding="utf-8")
    config = tmp / "fiscus.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            ledger: sqlite:///{tmp}/ledger.db
            budget_store: {store}
            keys: sqlite:///{tmp}/keys.db
            policy: policy.yaml
            providers:
              openai: {{kind: openai, base_url: "{emulator}/v1", api_key_env: {UPSTREAM_KEY_ENV},
                        models: ["gpt-4o-mini", "gpt-4o"], max_retries: 0}}
            gateway: {{pace_check_s: 0, alert_check_s: 0}}
            """
        )
        + guards,
        encoding="utf-8",
    )
    return config


def start_gateway(config: Path, port: int, log: Path, workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, UPSTREAM_KEY_ENV: "sk-emulator", "FISCUS_ADMIN_TOKEN": "admin-secret"}
    fiscus = str(Path(sys.executable).with_name("fiscus"))
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [fiscus, "serve", "--config", str(config), "--port", str(port), "--workers", str(workers)],
            stdout=out,
            stderr=out,
            env=env,
        )
    deadline = time.monotonic() + 120  # four workers importing on a loaded 2-core machine can take a minute
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                time.sleep(1.0)  # every worker up, not only the first to answer
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"the gateway did not start: {log.read_text()}")


def run_sdk_agent(config: Path, emulator: str, agent: str, calls: int, first: int, pause: float = 0.3) -> list[Any]:
    env = {**os.environ, "FISCUS_CONFIG": str(config)}
    done = subprocess.run(
        [sys.executable, "-c", SDK_AGENT, str(config), emulator, agent, str(calls), str(first), str(pause)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=config.parent,
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def wait_out_the_hour_end(margin_s: float = 120) -> None:
    """Spend is judged per clock hour: a scenario never straddles one."""
    left = 3600 - time.time() % 3600
    if left < margin_s:
        time.sleep(left + 1)
