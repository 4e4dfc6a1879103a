"""Loop detection across gateway workers (`fiscus serve --workers N`), with the money asserted exactly: the
loop detectors' state is shared through the breaker state's backend, so calls spread over the workers are judged
as on one worker.

- a reworded A2A loop (two agents under one key, no session, each turn said differently): stopped within ten
  rounds, and refused by every worker while it goes on;
- a legitimate 10-step research agent whose context grows ~20k tokens a step with new findings: never stopped.

On Redis with four workers, and on SQLite (`breakers.db` beside the budget store) with two.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from fiscus.config import load_config
from fiscus.emulator import EmulatorConfig, run_in_thread
from fiscus.events.cost_event import CallStatus
from fiscus.keys import KeyClaims, KeyRing, open_key_store
from fiscus.ledger import open_ledger
from tests.guards.test_loop_novelty import ASK_A, ASK_B
from tests.scenarios.fleet import free_port, start_gateway, wait_out_the_hour_end, write_config

POLICY = "version: 1\nbudgets:\n  - {name: growth-day, scope: {team: growth}, window: day, limit: {usd: 100}}\n"


def _chat(base: str, key: str, messages: list[dict[str, str]], **headers: str) -> httpx.Response:
    body = {"model": "gpt-4o-mini", "max_tokens": 16, "messages": messages}
    with httpx.Client(timeout=60) as client:  # a new connection per call: the workers share them out
        return client.post(
            f"{base}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}", **headers}
        )


@pytest.fixture(params=["redis-4", "sqlite-2"])
def fleet_store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, int]:
    if request.param == "redis-4":
        url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        return f"{url}?prefix={prefix}", 4
    return f"sqlite:///{tmp_path}/budget.db", 2


def test_a_loop_split_over_workers_is_stopped_and_a_research_agent_is_not(
    tmp_path: Path, fleet_store: tuple[str, int]
) -> None:
    wait_out_the_hour_end()
    store, workers = fleet_store
    with run_in_thread(EmulatorConfig(reply_tokens=20)) as emulator:
        config = write_config(tmp_path, emulator=emulator, store=store, guards="", policy=POLICY)
        ring = KeyRing(open_key_store(load_config(config).keys))
        pair, pair_key = ring.create(
            agent="writer", team="growth", environment="test", claims=KeyClaims.of({"agent": ["writer", "critic"]})
        )
        researcher, research_key = ring.create(agent="researcher", team="growth", environment="test")
        port, log = free_port(), tmp_path / "gateway.log"
        base = f"http://127.0.0.1:{port}"
        gateway = start_gateway(config, port, log, workers=workers)
        told: dict[str, list[Decimal]] = {pair_key.id: [], research_key.id: []}
        try:
            stopped_at = None
            for round_ in range(10):
                for agent, asks in (("writer", ASK_B), ("critic", ASK_A)):
                    ask = [{"role": "user", "content": asks[round_ % 4]}]
                    reply = _chat(base, pair, ask, **{"x-fiscus-agent": agent})
                    assert reply.status_code == 200, reply.text
                    if reply.headers.get("x-fiscus-guard") == "loop_detected":
                        stopped_at = stopped_at if stopped_at is not None else round_
                    else:
                        told[pair_key.id].append(Decimal(reply.headers["x-fiscus-cost-usd"]))
                if stopped_at is not None:
                    break
            assert stopped_at is not None and stopped_at < 10
            for i in range(4):  # the loop goes on trying: every worker refuses it
                agent, asks = (("writer", ASK_B), ("critic", ASK_A))[i % 2]
                reply = _chat(base, pair, [{"role": "user", "content": asks[i]}], **{"x-fiscus-agent": agent})
                assert reply.headers.get("x-fiscus-guard") == "loop_detected", reply.headers
            context = [
                {"role": "system", "content": "You research parcel markets."},
                {"role": "user", "content": "Map the UK parcel market by carrier."},
            ]
            for step in range(10):  # every step brings a new ~20k-token search result: the context grows each step
                findings = " ".join(f"carrier-{step}-{i} volume {step * 10_000 + i}" for i in range(3_000))
                context = [
                    *context,
                    {"role": "assistant", "content": f"Searching source {step}."},
                    {"role": "user", "content": f"Search result {step}: {findings}"},
                ]
                reply = _chat(base, researcher, context)
                assert reply.status_code == 200 and "x-fiscus-guard" not in reply.headers, reply.headers
                told[research_key.id].append(Decimal(reply.headers["x-fiscus-cost-usd"]))
        finally:
            gateway.terminate()
            gateway.wait(timeout=30)
    with open_ledger(load_config(config).ledger) as ledger:
        events = list(ledger.events())
    loop = [e for e in events if e.attribution.api_key == pair_key.id]
    served = [e for e in loop if e.status is CallStatus.OK]
    assert len(served) == len(told[pair_key.id]) < 2 * 10
    assert [e.status for e in loop if e.status is not CallStatus.OK] == [CallStatus.PARTIAL] * 5  # stops cost $0
    assert sum((e.total_usd for e in loop), Decimal(0)) == sum(told[pair_key.id])
    research = [e for e in events if e.attribution.api_key == research_key.id]
    assert [e.status for e in research] == [CallStatus.OK] * 10
    assert sum((e.total_usd for e in research), Decimal(0)) == sum(told[research_key.id])
    assert told[research_key.id][-1] > 5 * told[research_key.id][0]  # the growing context is priced as it grows
    assert "Traceback" not in log.read_text()
