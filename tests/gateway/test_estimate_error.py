"""A wrong token estimate cannot break a budget: the emulator bills one token per character (CJK text, base64) while
the gateway counts characters / 4, 200 calls at concurrency 50 through the real gateway near a $0.05 budget's end,
on the memory, SQLite and Redis stores. Settled spend ends at or under the limit exactly, the counters equal the
ledger, and nothing is left reserved (budget or worst-case counters)."""

from __future__ import annotations

import asyncio
import base64
import random
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from fiscus.config import GatewayConfig
from fiscus.engine.plan import hold_key
from fiscus.events.cost_event import CallStatus
from fiscus.money import from_nanos, to_nanos

from .conftest import real_gateway

CALLS, CONCURRENCY = 200, 50
LIMIT = Decimal("0.05")
POLICY = """
version: 1
budgets:
  - name: team-day
    scope: {team: growth}
    window: day
    limit: {usd: 0.05}
    thresholds: [{at: 1.0, action: block}]
"""
CJK = "預算は決して超えない。" * 200  # 2,200 characters, 6,600 UTF-8 bytes: characters / 4 counts 550 tokens
B64 = base64.b64encode(random.Random(7).randbytes(2_400)).decode()  # 3,200 characters, one byte each


@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis"])
def test_one_token_per_character_at_concurrency_50_never_passes_the_limit(
    backend: str, tmp_path: Path, emulator_url: str, request: pytest.FixtureRequest
) -> None:
    if backend == "memory":
        store = "memory://"
    elif backend == "sqlite":
        store = f"sqlite:///{tmp_path}/budget.db"
    else:
        store = f"{request.getfixturevalue('redis_url')}?prefix={request.getfixturevalue('redis_prefix')}"
    gateway = GatewayConfig(max_body_bytes=8 << 20, body_timeout_s=60, max_slow_bodies=CONCURRENCY)
    with real_gateway(tmp_path, emulator_url, POLICY, store, config_update={"gateway": gateway}) as real:

        async def run() -> list[httpx.Response]:
            gate = asyncio.Semaphore(CONCURRENCY)
            headers = {
                "x-api-key": real.key,
                "anthropic-version": "2023-06-01",
                "x-emulator-chars-per-token": "1",  # the provider's tokenizer: one token per character
            }
            # a connection per call: a kept-alive one the server closes as idle under load fails the next send
            limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=0)
            async with httpx.AsyncClient(base_url=real.url, timeout=60, limits=limits) as http:

                async def one(n: int) -> httpx.Response:
                    text = CJK if n % 2 else B64
                    body = {
                        "model": "claude-haiku-4-5",
                        "max_tokens": 40,
                        "messages": [{"role": "user", "content": text}],
                    }
                    async with gate:
                        return await http.post("/v1/messages", json=body, headers=headers)

                return await asyncio.gather(*(one(n) for n in range(CALLS)))

        replies = asyncio.run(run())
        statuses = sorted({r.status_code for r in replies})
        assert statuses == [200, 429], statuses
        served = {r.headers["x-fiscus-request-id"] for r in replies if r.status_code == 200}
        events = {e.id: e for e in real.events() if e.status is CallStatus.OK}
        assert set(events) == served
        # the provider really billed about four times the count: the estimate was wrong, the budget held
        assert all(e.usage.total_input_tokens >= 2_200 for e in events.values())
        (status,) = real.governor.status()
        spent = from_nanos(status.spent.nanos)
        assert spent <= LIMIT, f"settled {spent} on a {LIMIT} budget"
        assert status.spent.nanos == sum(to_nanos(e.cost.total) for e in events.values())  # counters == ledger
        assert status.spent.requests == len(events)
        assert spent >= LIMIT * Decimal("0.8")  # tight as well as safe: most of the budget was used
        store_ = real.governor.store
        keys = tuple(
            key for line in real.governor.engine.plan(_probe(), real.governor.now()).lines for key in line.keys
        )
        counters = store_.counters((*keys, *(hold_key(k) for k in keys)), now=real.governor.now())
        assert all(c.reserved.nanos == c.reserved.requests == 0 for c in counters.values())  # nothing left held
        assert {c.spent.nanos for c in counters.values()} == {status.spent.nanos}  # the worst-case counter agrees


def _probe():  # type: ignore[no-untyped-def]
    from fiscus.attribution import Attribution
    from fiscus.engine.request import CallRequest

    return CallRequest("anthropic", "claude-haiku-4-5", Attribution(team="growth"), input_tokens=0)
