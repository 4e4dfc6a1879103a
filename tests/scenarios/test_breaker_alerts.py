"""A spend-rate breaker's level stands in the alert table while it holds: two gateway workers (`fiscus serve
--workers 2`) on a SQLite and on a Redis store list the same entries in `GET /admin/alerts` and the dashboard's
panel (`/admin/finance`), count them in `/metrics`, and `fiscus alerts check` prints them, global and per agent,
with the hour's spend against the median hour to the nano-dollar, since when, and the owner; an operator's
reset clears the global one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from fiscus.config import load_config
from fiscus.emulator import EmulatorConfig, run_in_thread
from fiscus.events.cost_event import CallStatus
from fiscus.guards.windows import Delta, Horizon, open_breaker_windows
from fiscus.keys import KeyRing, open_key_store
from fiscus.ledger import open_ledger
from fiscus.money import to_nanos
from tests.scenarios.fleet import free_port, start_gateway, wait_out_the_hour_end, write_config

POLICY = "version: 1\nowners: {default: finops@example.com, agent: {gw-agent: rita@example.com}}\nbudgets: []\n"
# Breakers that trip only far past the alert table's levels, so the levels stand on closed breakers.
GUARDS = """
guards:
  breakers:
    global: {spend_rate_k: 10, min_history_hours: 3, error_rate: null, cooldown_s: 600}
    per_agent: {spend_rate_k: 10, min_history_hours: 3, error_rate: null}
  postmortem_dir: postmortems
  state_refresh_s: 0.2
"""
ADMIN = {"authorization": "Bearer admin-secret"}
SIGNAL = "breaker_spend_rate"


def _ask(base: str, key: str, n: int) -> Decimal:
    body = {"model": "gpt-4o-mini", "max_tokens": 16, "messages": [{"role": "user", "content": f"Module {n:04d}"}]}
    # A new connection each time, so the calls spread over the workers.
    got = httpx.post(f"{base}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}, timeout=30)
    assert got.status_code == 200, got.text
    return Decimal(got.headers["x-fiscus-cost-usd"])


def _standing(base: str, asks: int = 6) -> list[list[dict[str, Any]]]:
    """What /admin/alerts lists, asked `asks` times over new connections (so both workers answer)."""
    rows = [httpx.get(f"{base}/admin/alerts", headers=ADMIN, timeout=10).json() for _ in range(asks)]
    # Each answer is stamped with the moment it was evaluated; the rest is the same everywhere.
    return [[{k: v for k, v in a.items() if k != "timestamp"} for a in r if a["signal"] == SIGNAL] for r in rows]


def _until(check: Any, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def _cli(config: Path, *args: str) -> list[dict[str, Any]]:
    fiscus = str(Path(sys.executable).with_name("fiscus"))
    done = subprocess.run(
        [fiscus, "alerts", "check", "--config", str(config), "--json", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
        cwd=config.parent,
    )
    assert done.returncode == 0, done.stderr
    return [row for row in json.loads(done.stdout) if row["signal"] == SIGNAL]


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_breaker_levels_stand_in_the_alert_table_on_every_worker(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    wait_out_the_hour_end(margin_s=300)
    if backend == "redis":
        store = f"{request.getfixturevalue('redis_url')}?prefix={request.getfixturevalue('redis_prefix')}"
    else:
        store = f"sqlite:///{tmp_path}/budgets.db"
    with run_in_thread(EmulatorConfig(reply_tokens=30)) as emulator:
        config = write_config(tmp_path, emulator=emulator, store=store, guards=GUARDS, policy=POLICY)
        config.write_text(config.read_text().replace("alert_check_s: 0}", "alert_check_s: 0.5}"), encoding="utf-8")
        loaded = load_config(config)
        key, _ = KeyRing(open_key_store(loaded.keys)).create(agent="gw-agent", team="growth", environment="test")
        port, log = free_port(), tmp_path / "gateway.log"
        base = f"http://127.0.0.1:{port}"
        gateway = start_gateway(config, port, log, workers=2)
        try:
            one_call = _ask(base, key, 0)
            nanos = to_nanos(one_call)
            windows = open_breaker_windows(loaded.guards.state_url(loaded.budget_store))
            for hours_ago in (1, 2, 3):  # the past hours: four calls' worth each, the median hour
                at = Horizon.at(time.time() - hours_ago * 3600, history_hours=168, error_window_s=120)
                windows.exchange({"global": Delta(4 * nanos), "agent:gw-agent": Delta(4 * nanos)}, [], at)
            assert _standing(base, asks=2) == [[], []]  # one call this hour: no level

            told = [one_call] + [_ask(base, key, n) for n in range(1, 9)]  # 9 calls: 2.25 × the median hour
            warned = _until(
                lambda: (
                    (found := _standing(base))
                    and all(len(r) == 2 and all(a["detail"]["since"] for a in r) for r in found)
                    and all(r == found[0] for r in found)  # once the last settles reached every worker
                    and found
                )
            )
            assert warned, _standing(base)
            first = warned[0]
            assert all(r == first for r in warned)  # the same entries from both workers, since included
            by_breaker = {a["detail"]["breaker"]: a for a in first}
            assert set(by_breaker) == {"global", "agent:gw-agent"}
            for scope, owner in (("global", "finops@example.com"), ("agent:gw-agent", "rita@example.com")):
                entry = by_breaker[scope]
                assert entry["level"] == "warning" and entry["limit"] == "2" and entry["owner"] == owner
                assert Decimal(entry["detail"]["spend_usd"]) == 9 * one_call
                assert Decimal(entry["detail"]["baseline_usd"]) == 4 * one_call
                assert Decimal(entry["value"]) == Decimal("2.25")
                assert entry["detail"]["state"] == "closed"
                since = datetime.fromisoformat(entry["detail"]["since"])
                assert since.timestamp() <= time.time() and int(since.timestamp() // 3600) == int(time.time() // 3600)
            assert by_breaker["agent:gw-agent"]["subject"] == {"breaker": "agent:gw-agent", "agent": "gw-agent"}
            finance = httpx.get(f"{base}/admin/finance", headers=ADMIN, timeout=10).json()
            assert {a["detail"]["breaker"] for a in finance["anomalies"] if a["signal"] == SIGNAL} == set(by_breaker)

            told += [_ask(base, key, n) for n in range(9, 20)]  # 20 calls: 5 × the median hour
            rows = _until(
                lambda: (
                    (found := _standing(base))
                    and all(
                        {a["level"] for a in r} == {"critical"} and all(a["detail"]["since"] for a in r) for r in found
                    )
                    and all(r == found[0] for r in found)  # once the last settles reached every worker
                    and found
                )
            )
            assert rows, _standing(base)
            assert len(rows[0]) == 2
            for entry in rows[0]:
                assert entry["limit"] == "5" and Decimal(entry["detail"]["spend_usd"]) == 20 * one_call
                assert Decimal(entry["value"]) == 5
                assert datetime.fromisoformat(entry["detail"]["since"]) >= since  # since the level was reached

            def counted() -> bool:
                scrapes = [httpx.get(f"{base}/metrics", headers=ADMIN, timeout=10).text for _ in range(4)]
                return all(
                    f'fiscus_alerts_standing{{level="critical",signal="{SIGNAL}"}} 2.0' in m
                    and f'fiscus_alerts_standing{{level="warning",signal="{SIGNAL}"}} 0.0' in m
                    for m in scrapes
                )

            assert _until(counted), httpx.get(f"{base}/metrics", headers=ADMIN, timeout=10).text

            printed = _cli(config)
            assert {(r["detail"]["breaker"], r["level"], r["sent"]) for r in printed} == {
                ("global", "critical", False),  # the breakers announced their levels themselves
                ("agent:gw-agent", "critical", False),
            }
            assert {Decimal(r["detail"]["spend_usd"]) for r in printed} == {20 * one_call}

            # Exact spend: what the clients were told, the ledger and the shared window agree.
            with open_ledger(loaded.ledger) as ledger:
                served = [e for e in ledger.events() if e.status is CallStatus.OK]
            assert len(served) == 20 and sum((e.total_usd for e in served), Decimal(0)) == sum(told) == 20 * one_call
            now = Horizon.at(time.time(), history_hours=168, error_window_s=120)
            assert windows.exchange({}, ["global"], now)["global"].hourly[now.hour] == 20 * nanos

            # An operator's reset of the global breaker starts its figures again: its entry clears everywhere.
            reset = httpx.post(f"{base}/admin/breakers/global/reset", headers=ADMIN, timeout=10)
            assert reset.status_code == 200, reset.text
            cleared = _until(
                lambda: all([a["detail"]["breaker"] for a in r] == ["agent:gw-agent"] for r in _standing(base))
            )
            assert cleared, _standing(base)
            assert [r["detail"]["breaker"] for r in _cli(config)] == ["agent:gw-agent"]
            windows.close()
        finally:
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(timeout=30)
    assert "Traceback" not in log.read_text()
