"""The seeds' runaway stories through the gateway on Redis, with the money asserted exactly: what the clients were
told (x-fiscus-cost-usd), what the ledger holds and what the shared breaker windows counted agree.

- a stolen key firing failing requests at two gateway workers: its own breaker opens in both, other keys are
  served throughout;
- a reworded A2A loop (two agents under one key, no session, each turn said differently): stopped within ten
  rounds;
- a recursive subagent spawn, each subagent inheriting its parent's context: one implicit conversation, stopped;
- a legitimate research agent whose context grows every step with new findings: never stopped.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from fiscus.config import load_config
from fiscus.emulator import EmulatorConfig, run_in_thread
from fiscus.events.cost_event import CallStatus
from fiscus.guards.settings import GuardsConfig
from fiscus.guards.windows import Horizon, open_breaker_windows
from fiscus.keys import KeyClaims, KeyRing, open_key_store
from fiscus.ledger import open_ledger
from fiscus.money import to_nanos
from tests.gateway.conftest import Real, real_gateway
from tests.guards.test_loop_novelty import ASK_A, ASK_B
from tests.scenarios.fleet import free_port, start_gateway, wait_out_the_hour_end, write_config

POLICY = "version: 1\nbudgets:\n  - {name: growth-day, scope: {team: growth}, window: day, limit: {usd: 100}}\n"
ADMIN = {"authorization": "Bearer admin-secret"}


def _chat(base: str, key: str, messages: list[dict[str, str]], **headers: str) -> httpx.Response:
    body = {"model": "gpt-4o-mini", "max_tokens": 16, "messages": messages}
    return httpx.post(
        f"{base}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}", **headers}, timeout=30
    )


def _hour_spend(store: str, scope: str) -> int:
    """This hour's spend of `scope` in the shared window, once every worker has exchanged (each does every second)."""
    time.sleep(1.5)
    now = Horizon.at(time.time(), history_hours=168, error_window_s=120)
    windows = open_breaker_windows(store)
    try:
        return windows.exchange({}, [scope], now)[scope].hourly.get(now.hour, 0)
    finally:
        windows.close()


def test_a_stolen_key_opens_its_own_breaker_in_every_worker(tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    wait_out_the_hour_end()
    store = f"{redis_url}?prefix={redis_prefix}"
    guards = """
guards:
  breakers:
    per_key: {error_rate: 0.8, min_calls: 20, error_window: 20, error_window_s: 120}
    on_open: block
  state_refresh_s: 0.2
"""
    with run_in_thread(EmulatorConfig(reply_tokens=30)) as emulator:
        config = write_config(tmp_path, emulator=emulator, store=store, guards=guards, policy=POLICY)
        ring = KeyRing(open_key_store(load_config(config).keys))
        stolen, stolen_key = ring.create(agent="billing", team="growth", environment="prod")
        honest, honest_key = ring.create(agent="support", team="growth", environment="prod")
        port, log = free_port(), tmp_path / "gateway.log"
        base = f"http://127.0.0.1:{port}"
        gateway = start_gateway(config, port, log, workers=2)
        told: list[Decimal] = []
        statuses: list[int] = []
        try:

            def attacker(n: int) -> None:  # the thief's script: requests the provider rejects, as fast as it can
                for i in range(20):
                    ask = [{"role": "user", "content": f"x{n}-{i}"}]
                    reply = _chat(base, stolen, ask, **{"x-emulator-error": "400"})
                    statuses.append(reply.status_code)
                    time.sleep(0.05)

            threads = [threading.Thread(target=attacker, args=(n,)) for n in range(2)]
            for thread in threads:
                thread.start()
            for i in range(10):  # the honest key keeps working meanwhile
                reply = _chat(base, honest, [{"role": "user", "content": f"Where is parcel {i:04d}?"}])
                assert reply.status_code == 200, reply.text
                told.append(Decimal(reply.headers["x-fiscus-cost-usd"]))
            for thread in threads:
                thread.join()
            time.sleep(1.0)
            after = [_chat(base, stolen, [{"role": "user", "content": f"y{i}"}]) for i in range(6)]
            assert [r.status_code for r in after] == [429] * 6  # even a good request: the key is stopped
            assert {r.json()["error"]["code"] for r in after} == {"breaker_open"}
            assert _chat(base, honest, [{"role": "user", "content": "Where is parcel 0010?"}]).status_code == 200
            rows = {r["name"]: r for r in httpx.get(f"{base}/admin/breakers", headers=ADMIN, timeout=10).json()}
        finally:
            gateway.terminate()
            gateway.wait(timeout=30)
    assert rows[f"key:{stolen_key.id}"]["state"] == "open" and rows[f"key:{stolen_key.id}"]["reason"] == "error_rate"
    assert rows.get(f"key:{honest_key.id}", {"state": "closed"})["state"] == "closed"
    assert rows["global"]["state"] == "closed" and rows["model:openai/gpt-4o-mini"]["state"] == "closed"
    with open_ledger(load_config(config).ledger) as ledger:
        events = list(ledger.events())
    thief = [e for e in events if e.attribution.api_key == stolen_key.id]
    failed = [e for e in thief if e.status is CallStatus.ERROR]
    # 20 failures open the breaker; calls already in flight in the other worker may still fail, no more.
    assert 20 <= len(failed) <= 30 and statuses.count(400) == len(failed) and statuses.count(429) == 40 - len(failed)
    assert sum((e.total_usd for e in thief), Decimal(0)) == 0  # failed and refused calls cost nothing
    served = [e for e in events if e.attribution.api_key == honest_key.id and e.status is CallStatus.OK]
    assert len(served) == 11 and sum((e.total_usd for e in served), Decimal(0)) == sum(told) + told[0]
    assert _hour_spend(store, "global") == sum(to_nanos(e.total_usd) for e in served)


@pytest.fixture
def gateway_on_redis(tmp_path: Path, emulator_url: str, redis_url: str, redis_prefix: str):
    def start(**guards: object) -> tuple[Real, str]:
        store = f"{redis_url}?prefix={redis_prefix}"
        config = GuardsConfig.model_validate({"postmortem_dir": str(tmp_path / "pm"), **guards})
        served = real_gateway(tmp_path, emulator_url, POLICY, store, config_update={"guards": config})
        opened.append(served)
        return served.__enter__(), store

    opened: list[object] = []
    yield start
    for served in opened:
        served.__exit__(None, None, None)  # type: ignore[attr-defined]


def _spent(real: Real) -> tuple[list[object], Decimal]:
    events = real.events()
    return events, sum((e.total_usd for e in events), Decimal(0))


def test_a_reworded_a2a_loop_is_stopped_within_ten_rounds(gateway_on_redis) -> None:
    wait_out_the_hour_end()
    real, store = gateway_on_redis()
    key, _ = real.keyring.create(
        agent="writer", team="growth", environment="test", claims=KeyClaims.of({"agent": ["writer", "critic"]})
    )
    told: list[Decimal] = []
    stopped_at = None
    for round_ in range(10):
        for agent, asks in (("writer", ASK_B), ("critic", ASK_A)):
            reply = _chat(real.url, key, [{"role": "user", "content": asks[round_ % 4]}], **{"x-fiscus-agent": agent})
            assert reply.status_code == 200
            if reply.headers.get("x-fiscus-guard") == "loop_detected":
                stopped_at = stopped_at or round_
            else:
                told.append(Decimal(reply.headers["x-fiscus-cost-usd"]))
        if stopped_at is not None:
            break
    assert stopped_at is not None and stopped_at < 10
    events, spent = _spent(real)
    served = [e for e in events if e.status is CallStatus.OK]
    assert len(served) == len(told) <= 2 * 10 and spent == sum(told)
    assert [e.status for e in events if e.status is not CallStatus.OK] == [CallStatus.PARTIAL]  # the stop: $0
    assert _hour_spend(store, "global") == sum(to_nanos(e.total_usd) for e in served)


def test_a_recursive_subagent_spawn_inheriting_context_is_stopped(gateway_on_redis) -> None:
    wait_out_the_hour_end()
    real, store = gateway_on_redis()
    context = [
        {"role": "system", "content": "You are a research agent. Delegate what you cannot answer."},
        {"role": "user", "content": "Why did parcel volumes in Leeds drop in November?"},
    ]
    told: list[Decimal] = []
    depth = 0
    for level in range(1, 24):  # each subagent starts from its parent's context and spawns the next
        depth = level
        context = [*context, {"role": "assistant", "content": "I will delegate this to a subagent."}]
        context = [*context, {"role": "user", "content": "You are a new subagent: research the question above."}]
        reply = _chat(real.url, real.key, context)
        assert reply.status_code == 200
        if reply.headers.get("x-fiscus-guard") == "loop_detected":
            break
        told.append(Decimal(reply.headers["x-fiscus-cost-usd"]))
    assert depth <= 4  # stopped within a few levels, not 23
    events, spent = _spent(real)
    assert spent == sum(told) and len([e for e in events if e.status is CallStatus.OK]) == len(told)
    assert _hour_spend(store, "global") == sum(to_nanos(t) for t in told)


def test_a_legitimate_research_agent_is_not_stopped(gateway_on_redis) -> None:
    wait_out_the_hour_end()
    real, store = gateway_on_redis()
    context = [
        {"role": "system", "content": "You research parcel markets."},
        {"role": "user", "content": "Map the UK parcel market by carrier."},
    ]
    told: list[Decimal] = []
    for step in range(12):  # every step brings a new tool result of ~6k tokens: the context grows each step
        findings = " ".join(f"carrier-{step}-{i} volume {step * 1000 + i}" for i in range(1_500))
        context = [
            *context,
            {"role": "assistant", "content": f"Searching source {step}."},
            {"role": "user", "content": f"Search result {step}: {findings}"},
        ]
        reply = _chat(real.url, real.key, context, **{"x-fiscus-session": "research-1"})
        assert reply.status_code == 200 and "x-fiscus-guard" not in reply.headers, reply.headers
        told.append(Decimal(reply.headers["x-fiscus-cost-usd"]))
    events, spent = _spent(real)
    assert [e.status for e in events] == [CallStatus.OK] * 12
    assert spent == sum(told) and told[-1] > told[0]  # the growing context is priced as it grows
    assert _hour_spend(store, "global") == sum(to_nanos(t) for t in told)
