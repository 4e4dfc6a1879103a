"""500 concurrent calls in one process on the Redis store near a budget's end, with a small connection pool:
no 5xx — a call queues for a connection rather than failing — every refusal is a 429, and every served call is
in the ledger and on the counters."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from fiscus.config import GatewayConfig, StoreConfig
from fiscus.events.cost_event import CallStatus
from fiscus.guards.settings import BreakersSettings, GuardsConfig
from fiscus.money import to_nanos

from .conftest import real_gateway

CONCURRENCY = 500
POLICY = """
version: 1
budgets:
  - name: pool-day
    scope: {team: growth}
    window: day
    limit: {requests: 120}
    thresholds: [{at: 1.0, action: block}]
"""


@pytest.mark.redis
def test_concurrency_500_near_exhaustion_gives_no_5xx_and_429_refusals(
    tmp_path: Path, emulator_url: str, redis_url: str, redis_prefix: str
) -> None:
    store = f"{redis_url}?prefix={redis_prefix}"
    # The load generator shares this process (and its GIL) with the gateway: 500 bodies take a while to arrive,
    # which the slow-body guard must not count against them here.
    gateway = GatewayConfig(max_body_bytes=8 << 20, body_timeout_s=60, max_slow_bodies=CONCURRENCY)
    guards = GuardsConfig(breakers=BreakersSettings(on_open="block"))  # a breaker's refusal is a 429 too
    # The store's 1 s timeout is measured on this process's event loop, which 500 calls and their load generator
    # saturate on a busy machine: a slow loop is not what this test is about (the pool is), so it gets 10 s.
    store_config = StoreConfig(pool_size=4, pool_wait_s=30, timeout_s=10)
    update = {"store": store_config, "gateway": gateway, "guards": guards}
    with real_gateway(tmp_path, emulator_url, POLICY, store, config_update=update) as real:

        async def run() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
            async with httpx.AsyncClient(base_url=real.url + "/v1", timeout=60, limits=limits) as http:
                body = {"model": "gpt-4o-mini", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
                headers = {"authorization": f"Bearer {real.key}"}
                calls = [http.post("/chat/completions", json=body, headers=headers) for _ in range(CONCURRENCY)]
                return await asyncio.gather(*calls)

        replies = asyncio.run(run())
        statuses = sorted({r.status_code for r in replies})
        assert statuses == [200, 429], statuses
        served = [r.headers["x-fiscus-request-id"] for r in replies if r.status_code == 200]
        assert len(served) == 120
        refusals = {r.json()["error"]["type"] for r in replies if r.status_code == 429}
        assert refusals <= {"insufficient_quota", "rate_limit_error"}, refusals  # OpenAI's own types
        events = {e.id: e for e in real.events() if e.status is CallStatus.OK}
        assert set(served) == set(events)
        (status,) = real.governor.status()
        assert status.spent.requests == 120
        assert status.spent.nanos == sum(to_nanos(e.cost.total) for e in events.values())
        assert status.reserved.requests == 0
