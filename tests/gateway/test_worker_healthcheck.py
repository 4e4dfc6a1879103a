"""`fiscus serve --workers N` on a loaded host: a worker slow to start (here every worker process sleeps 12 s
before its interpreter runs anything) is waited for, not killed. uvicorn's own 5 s health check killed such
workers before they could answer and started new ones, forever: the gateway never came up, and a busy worker late
to answer was killed mid-request, resetting its clients' connections."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.scenarios.fleet import free_port

# Imported at every interpreter's start (on PYTHONPATH): a worker process (multiprocessing's spawn) starts slowly.
SLOW_START = """
import sys, time
if "--multiprocessing-fork" in sys.argv:
    time.sleep(12)
"""


def test_workers_slower_to_start_than_uvicorns_health_check_are_waited_for(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SLOW_START, encoding="utf-8")
    config = tmp_path / "fiscus.yaml"
    config.write_text(
        f"budget_store: sqlite:///{tmp_path}/budgets.db\nledger: sqlite:///{tmp_path}/ledger.db\n"
        f"keys: sqlite:///{tmp_path}/keys.db\n",
        encoding="utf-8",
    )
    port, log = free_port(), tmp_path / "gateway.log"
    paths = [str(tmp_path / "site"), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    fiscus = str(Path(sys.executable).with_name("fiscus"))
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [fiscus, "serve", "--config", str(config), "--port", str(port), "--workers", "2"],
            stdout=out,
            stderr=out,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)},
        )
    try:
        up = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not up:
            assert proc.poll() is None, log.read_text()
            try:
                up = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                time.sleep(0.2)
        assert up, f"the gateway did not come up: {log.read_text()}"
        workers = _children(proc.pid)
        time.sleep(2)  # the supervisor checks every half second: a worker it replaced would show a new pid
        assert len(workers) == 2 and _children(proc.pid) == workers
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _children(pid: int) -> set[int]:
    """The supervisor's worker processes (its children other than multiprocessing's resource tracker)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"--multiprocessing-fork" in cmdline:
            found.add(int(entry.name))
    return found
