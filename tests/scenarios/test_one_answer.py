"""Same state, same answer, whatever the worker: `fiscus serve --workers 4` on Redis with a `block` policy, 400
requests at concurrency 50 on a budget of 120 requests. Exactly 120 are served by a model, the other 280 are 429s
with `code: budget_exhausted` — no 200 partial among them, though the four workers race for the last room and
each reads the counters at its own instant — and the ledger and the counters agree.

The race it pins: a budget written with `on_exhausted: block` kept the default threshold "partial at 100 %". A
worker whose counter read came after the 120th reservation saw 100 % and answered with that threshold's partial;
one whose read came just before saw room, lost the reservation and answered with the budget's block. Which one a
client got depended on what the other workers held at that instant."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from fiscus.config import load_config
from fiscus.emulator import EmulatorConfig, run_in_thread
from fiscus.governor import Governor
from fiscus.keys import KeyRing, open_key_store
from tests.scenarios.test_crash_safety import UPSTREAM_KEY_ENV, free_port

WORKERS = 4
REQUESTS = 400
CONCURRENCY = 50
LIMIT = 120
POLICIES = {
    # the default thresholds (warn 0.8, downgrade + compress 0.9, partial 1.0) with a block at exhaustion
    "on_exhausted": "limit: {requests: 120}\n    on_exhausted: block",
    "thresholds": "limit: {requests: 120, usd: 100}\n    thresholds: [{at: 0.8, action: warn}, {at: 1, action: block}]",
}


def _serve(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    fiscus = str(Path(sys.executable).with_name("fiscus"))
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [fiscus, "serve", "--config", str(config), "--port", str(port), "--workers", str(WORKERS)],
            stdout=out,
            stderr=out,
            env={**os.environ, UPSTREAM_KEY_ENV: "sk-emulator"},
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"the gateway did not start: {log.read_text()}")


async def _fire(port: int, key: str) -> list[httpx.Response]:
    gate = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/v1", timeout=60, limits=limits) as http:

        async def one(n: int) -> httpx.Response:
            body = {"model": "gpt-4o-mini", "max_tokens": 32, "messages": [{"role": "user", "content": f"task {n}"}]}
            async with gate:
                return await http.post("/chat/completions", json=body, headers={"authorization": f"Bearer {key}"})

        return await asyncio.gather(*(one(n) for n in range(REQUESTS)))


@pytest.mark.redis
@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_four_workers_on_redis_give_a_block_policy_no_partial(
    policy: str, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    (tmp_path / "policy.yaml").write_text(
        f"version: 1\nbudgets:\n  - name: growth-day\n    scope: {{team: growth}}\n    window: day\n"
        f"    {POLICIES[policy]}\n",
        encoding="utf-8",
    )
    with run_in_thread(EmulatorConfig()) as emulator:
        config = tmp_path / "fiscus.yaml"
        config.write_text(
            textwrap.dedent(
                f"""
                ledger: sqlite:///{tmp_path}/ledger.db
                budget_store: {redis_url}?prefix={redis_prefix}
                keys: sqlite:///{tmp_path}/keys.db
                policy: policy.yaml
                providers:
                  openai: {{kind: openai, base_url: "{emulator}/v1", api_key_env: {UPSTREAM_KEY_ENV},
                            models: ["gpt-4o-mini"], max_retries: 0}}
                gateway: {{pace_check_s: 0, alert_check_s: 0, max_slow_bodies: {CONCURRENCY}}}
                """
            ),
            encoding="utf-8",
        )
        loaded = load_config(config)
        key, _ = KeyRing(open_key_store(loaded.keys)).create(agent="worker-race", team="growth", environment="test")
        port = free_port()
        gateway = _serve(config, port, tmp_path / "gateway.log")
        try:
            replies = asyncio.run(_fire(port, key))
        finally:
            gateway.terminate()
            gateway.wait(timeout=30)

    answers = Counter((r.status_code, r.headers.get("x-fiscus-partial")) for r in replies)
    assert answers == {(200, None): LIMIT, (429, None): REQUESTS - LIMIT}
    served = [r for r in replies if r.status_code == 200]
    assert all(r.json()["choices"][0]["message"]["content"] and "fiscus" not in r.json() for r in served)
    refused = [r for r in replies if r.status_code == 429]
    assert {r.json()["error"]["code"] for r in refused} == {"budget_exhausted"}
    assert all(int(r.headers["retry-after"]) >= 1 for r in refused)

    with sqlite3.connect(tmp_path / "ledger.db") as ledger:
        by_status = dict(ledger.execute("SELECT status, COUNT(*) FROM cost_events GROUP BY status").fetchall())
    assert by_status == {"ok": LIMIT, "blocked": REQUESTS - LIMIT}
    assert f"({WORKERS} workers)" in (tmp_path / "gateway.log").read_text()
    governor = Governor.from_config(loaded)
    try:
        (status,) = governor.status()
    finally:
        governor.close()
    assert status.spent.requests == LIMIT and status.reserved.requests == 0
