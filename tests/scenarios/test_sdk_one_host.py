"""SDK processes with no fiscus.yaml on one host share their breakers: the default state is `breakers.db` beside
the default ledger, so an account-wide burst split over several processes (the official openai client, wrapped,
against the in-repo emulator) trips the global spend-rate breaker on the call one process alone would trip it
on, with the spend exact; `FISCUS_GUARDS_STATE=memory://` keeps a process's breakers its own again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from fiscus.emulator import EmulatorConfig, run_in_thread
from fiscus.events.cost_event import CallStatus
from fiscus.guards.state import open_breaker_state
from fiscus.guards.windows import Delta, Horizon, open_breaker_windows
from fiscus.ledger import open_ledger
from fiscus.money import to_nanos
from tests.scenarios.fleet import wait_out_the_hour_end

# One SDK process with no config: `n` calls, a pause between them; prints what each call got and what it cost.
AGENT = """
import json, sys, time
import openai, fiscus
emulator, agent, n, first, pause = sys.argv[1:6]
client = fiscus.wrap(
    openai.OpenAI(base_url=emulator + "/v1", api_key="sk-emulator", max_retries=0), agent=agent, on_exhausted="raise"
)
got = []
for i in range(int(n)):
    try:
        client.chat.completions.create(
            model="gpt-4o-mini", max_tokens=16,
            messages=[{"role": "user", "content": f"Analyse module {int(first) + i:04d}"}],
        )
        got.append("ok")
    except fiscus.GuardRefused as exc:
        got.append("refused: " + str(exc)[:120])
    time.sleep(float(pause))
print(json.dumps(got))
"""
PAUSE_S = 0.7  # longer than the default state_refresh_s (0.5): each call judged on every earlier one


def _start(home: Path, emulator: str, agent: str, n: int, first: int, **env: str) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("FISCUS_CONFIG", "FISCUS_GUARDS_STATE")}
    return subprocess.Popen(
        [sys.executable, "-c", AGENT, emulator, agent, str(n), str(first), str(PAUSE_S)],
        cwd=home,
        env={**clean, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _results(proc: subprocess.Popen[str]) -> list[Any]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return list(json.loads(out.strip().splitlines()[-1]))


def test_sdk_processes_without_a_config_share_the_account_breaker(tmp_path: Path) -> None:
    wait_out_the_hour_end()
    home = tmp_path / "app"  # no fiscus.yaml: the defaults, the ledger at .fiscus/ledger.db
    home.mkdir()
    state = f"sqlite:///{home / '.fiscus' / 'breakers.db'}"
    with run_in_thread(EmulatorConfig(reply_tokens=30)) as emulator:
        (home / ".fiscus").mkdir()
        one_call = _price_of_one_call(home, emulator)
        nanos = to_nanos(one_call)
        windows = open_breaker_windows(state)
        for hours_ago in (1, 2, 3):  # the account's past hours: four calls' worth each, the median hour
            at = Horizon.at(time.time() - hours_ago * 3600, history_hours=168, error_window_s=120)
            windows.exchange({"global": Delta(4 * nanos)}, [], at)

        # Three processes at once, four calls each: 12 calls, 3 × the median hour, not above it.
        first = [_start(home, emulator, f"worker-{i}", 4, 100 * i) for i in range(3)]
        assert [_results(p) for p in first] == [["ok"] * 4] * 3
        # A fourth: its first call is the account's 13th, past 3 ×: it trips there, as in one process alone.
        late = _results(_start(home, emulator, "worker-3", 3, 300))
        assert late[0] == "ok" and all(r.startswith("refused: global circuit breaker is open") for r in late[1:]), late
        # The trip stands in every process of the host.
        again = _results(_start(home, emulator, "worker-4", 2, 400))
        assert all(r.startswith("refused: global circuit breaker is open") for r in again), again
        # Opted out: a process keeping its breakers to itself knows no history, so nothing stops it.
        alone = _results(_start(home, emulator, "worker-5", 2, 500, FISCUS_GUARDS_STATE="memory://"))
        assert alone == ["ok", "ok"]

        with open_ledger(f"sqlite:///{home / '.fiscus' / 'ledger.db'}") as ledger:
            served = [e for e in ledger.events() if e.status is CallStatus.OK]
        assert len(served) == 1 + 13 + 2 and {e.total_usd for e in served} == {one_call}  # probe, shared, alone
        assert sum((e.total_usd for e in served), Decimal(0)) == 16 * one_call
        now = Horizon.at(time.time(), history_hours=168, error_window_s=120)
        assert windows.exchange({}, ["global"], now)["global"].hourly[now.hour] == 13 * nanos  # the opted-out 2 apart
        (trip,) = [r for r in open_breaker_state(state).load_all() if r.scope == "global"]
        assert trip.state == "open" and trip.reason == "spend_rate" and trip.trips == 1
        assert Decimal(trip.details["hour_spend_usd"]) == 13 * one_call
        assert Decimal(trip.details["median_hourly_usd"]) == 4 * one_call
        windows.close()


def _price_of_one_call(home: Path, emulator: str) -> Decimal:
    """What one call of the scenario costs, from a process keeping its breakers to itself (not in the window)."""
    got = _results(_start(home, emulator, "probe", 1, 0, FISCUS_GUARDS_STATE="memory://"))
    assert got == ["ok"]
    with open_ledger(f"sqlite:///{home / '.fiscus' / 'ledger.db'}") as ledger:
        (event,) = ledger.events()
    assert event.total_usd > 0
    return event.total_usd
