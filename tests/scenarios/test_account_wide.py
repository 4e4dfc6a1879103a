"""The account breaker across a fleet on Redis: four gateway workers (`fiscus serve --workers 4`) and SDK agents in
processes of their own share one spend window, so a burst split across them trips the breaker none of them
would trip alone; the trip holds in every door, and the money is exact: what the ledger holds, what the shared
window counted and what the clients were told agree to the nano-dollar. Then the policy reloads across the
four workers, by the admin API and by SIGHUP to the supervisor (passed on, not a restart), and a broken file
keeps the running policy."""

from __future__ import annotations

import json
import signal
import time
from decimal import Decimal
from pathlib import Path

import httpx

from fiscus.config import load_config
from fiscus.emulator import EmulatorConfig, run_in_thread
from fiscus.events.cost_event import CallStatus
from fiscus.events.policy_event import PolicyEventKind
from fiscus.guards.state import open_breaker_state
from fiscus.guards.windows import Delta, Horizon, open_breaker_windows
from fiscus.keys import KeyRing, open_key_store
from fiscus.ledger import open_ledger
from fiscus.money import from_nanos, to_nanos
from fiscus.policy.load import load_policy
from tests.scenarios.fleet import free_port, run_sdk_agent, start_gateway, wait_out_the_hour_end, write_config

POLICY = "version: 1\nbudgets:\n  - {{name: growth-day, scope: {{team: growth}}, window: day, limit: {{usd: {usd}}}}}\n"
GUARDS = """
guards:
  breakers:
    global: {spend_rate_k: 3, min_history_hours: 3, error_rate: null, cooldown_s: 600}
    per_agent: {spend_rate_k: null, error_rate: null}
    on_open: block
  postmortem_dir: postmortems
  state_refresh_s: 0.2
"""
ADMIN = {"authorization": "Bearer admin-secret"}


def _ask(base: str, key: str, n: int) -> httpx.Response:
    ask = {"role": "user", "content": f"Analyse module {n:04d}"}
    body = {"model": "gpt-4o-mini", "max_tokens": 16, "messages": [ask]}
    # A new connection each time, so the calls spread over the workers.
    return httpx.post(f"{base}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}, timeout=30)


def _policy_versions(base: str, asks: int = 12) -> set[str]:
    return {httpx.get(f"{base}/admin/policy", headers=ADMIN, timeout=10).json()["version"] for _ in range(asks)}


def test_a_burst_across_four_workers_and_sdk_processes_trips_the_account_breaker(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    wait_out_the_hour_end()
    store = f"{redis_url}?prefix={redis_prefix}"
    with run_in_thread(EmulatorConfig(reply_tokens=30)) as emulator:
        config = write_config(tmp_path, emulator=emulator, store=store, guards=GUARDS, policy=POLICY.format(usd=100))
        loaded = load_config(config)
        key, _ = KeyRing(open_key_store(loaded.keys)).create(agent="gw-agent", team="growth", environment="test")
        port, log = free_port(), tmp_path / "gateway.log"
        base = f"http://127.0.0.1:{port}"
        gateway = start_gateway(config, port, log, workers=4)
        try:
            first = _ask(base, key, 0)
            assert first.status_code == 200, first.text
            one_call = Decimal(first.headers["x-fiscus-cost-usd"])
            nanos = to_nanos(one_call)
            windows = open_breaker_windows(store)
            for hours_ago in (1, 2, 3):  # the account's past hours: four calls' worth each, the median hour
                at = Horizon.at(time.time() - hours_ago * 3600, history_hours=168, error_window_s=120)
                windows.exchange({"global": Delta(4 * nanos)}, [], at)

            # 6 calls through the gateway, 5 + 5 from two SDK processes: each share under 3 × the median hour
            # (12 calls), the sum past it. The trip comes on the 13th call of the account, in the second process.
            told = [one_call] + [Decimal(_ask(base, key, n).headers["x-fiscus-cost-usd"]) for n in range(1, 6)]
            time.sleep(1.5)  # every worker's share is in the shared window (an idle worker exchanges each second)
            sdk_a = run_sdk_agent(config, emulator, "sdk-a", 5, first=100)
            sdk_b = run_sdk_agent(config, emulator, "sdk-b", 5, first=200)
            assert sdk_a == ["ok"] * 5
            assert sdk_b[:2] == ["ok", "ok"]
            assert all(got.startswith("refused: global circuit breaker is open") for got in sdk_b[2:]), sdk_b

            time.sleep(1.0)  # the trip reaches every worker within the state refresh
            after = [_ask(base, key, n) for n in range(300, 304)]
            assert [r.status_code for r in after] == [429] * 4
            assert {r.json()["error"]["code"] for r in after} == {"breaker_open"}
            sdk_c = run_sdk_agent(config, emulator, "sdk-c", 2, first=400, pause=0)
            assert all(got.startswith("refused: global circuit breaker is open") for got in sdk_c), sdk_c

            # Exact: 13 calls served, each the same price; the ledger, the shared window and the clients agree.
            assert all(t == one_call for t in told)
            with open_ledger(loaded.ledger) as ledger:
                served = [e for e in ledger.events() if e.status is CallStatus.OK]
                starts = [p for p in ledger.policy_events() if p.kind is PolicyEventKind.START]
            assert len(served) == 13 and {e.total_usd for e in served} == {one_call}
            assert sum((e.total_usd for e in served), Decimal(0)) == 13 * one_call
            now = Horizon.at(time.time(), history_hours=168, error_window_s=120)
            hour = windows.exchange({}, ["global"], now)["global"].hourly[now.hour]
            assert hour == 13 * nanos == sum(to_nanos(e.total_usd) for e in served)
            assert len(starts) == 4 + 3  # four workers and three SDK processes, each on the policy it enforces

            state = open_breaker_state(store)
            (trip,) = [r for r in state.load_all() if r.scope == "global"]
            assert trip.state == "open" and trip.reason == "spend_rate" and trip.trips == 1
            assert Decimal(trip.details["hour_spend_usd"]) == from_nanos(13 * nanos)
            assert Decimal(trip.details["median_hourly_usd"]) == from_nanos(4 * nanos)
            (postmortem,) = (tmp_path / "postmortems").glob("*-global-spend_rate-*.json")
            assert json.loads(postmortem.read_text())["account"]["median_hourly_usd"] == str(from_nanos(4 * nanos))

            rows = {r["name"]: r for r in httpx.get(f"{base}/admin/breakers", headers=ADMIN, timeout=10).json()}
            assert rows["global"]["state"] == "open" and rows["global"]["level"] == "warning"

            # Policy reload by the admin API: the worker it hits reloads, the others take it from the store.
            version = load_policy(tmp_path / "policy.yaml").version
            assert _policy_versions(base) == {version}
            (tmp_path / "policy.yaml").write_text(POLICY.format(usd=200), encoding="utf-8")
            reloaded = httpx.post(f"{base}/admin/policy/reload", headers=ADMIN, timeout=10).json()
            assert reloaded["ok"] and reloaded["changed"] and reloaded["previous"] == version
            time.sleep(2.0)
            assert _policy_versions(base) == {reloaded["version"]}

            # SIGHUP to the supervisor: passed to each worker, which reloads (validated); no worker restarts.
            (tmp_path / "policy.yaml").write_text(POLICY.format(usd=300), encoding="utf-8")
            gateway.send_signal(signal.SIGHUP)
            time.sleep(2.0)
            third = load_policy(tmp_path / "policy.yaml").version
            assert _policy_versions(base) == {third}
            (tmp_path / "policy.yaml").write_text("version: 1\nbudgets: [{name: x, window: fortnight}]\n")
            gateway.send_signal(signal.SIGHUP)
            time.sleep(2.0)
            assert _policy_versions(base) == {third}  # the broken file changed nothing
            assert gateway.poll() is None
            with open_ledger(loaded.ledger) as ledger:
                events = ledger.policy_events()
            reloads = [p.version for p in events if p.kind is PolicyEventKind.RELOAD]
            assert sorted(reloads) == sorted([reloaded["version"]] * 4 + [third] * 4)
            assert len([p for p in events if p.kind is PolicyEventKind.START]) == 7  # nothing restarted
        finally:
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(timeout=30)
    text = log.read_text()
    assert text.count("policy reload refused, keeping version") == 4 and "fortnight" in text
    assert "Traceback" not in text
