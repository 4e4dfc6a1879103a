"""`fiscus serve` as a process, on a loaded host: what its server does with workers and client connections.

- With `--workers N` a worker slow to start (here every worker process sleeps 12 s before its interpreter runs
  anything) is waited for, not killed. uvicorn's own 5 s health check killed such workers before they could answer
  and started new ones, forever: the gateway never came up, and a busy worker late to answer was killed
  mid-request, resetting its clients' connections.
- A client connection idle for longer than clients keep theirs (httpx: 5 s) is still open: the gateway closing it
  at 5 s, as uvicorn does by default, raced a client sending its next request on it (a reset, httpx.ReadError)."""

from __future__ import annotations

import os
import socket
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


def _serve(tmp_path: Path, workers: int, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """`fiscus serve` on a free port, once it answers /healthz (within 90 s)."""
    config = tmp_path / "fiscus.yaml"
    config.write_text(
        f"budget_store: sqlite:///{tmp_path}/budgets.db\nledger: sqlite:///{tmp_path}/ledger.db\n"
        f"keys: sqlite:///{tmp_path}/keys.db\n",
        encoding="utf-8",
    )
    port, log = free_port(), tmp_path / "gateway.log"
    fiscus = str(Path(sys.executable).with_name("fiscus"))
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [fiscus, "serve", "--config", str(config), "--port", str(port), "--workers", str(workers)],
            stdout=out,
            stderr=out,
            env={**os.environ, **(env or {})},
        )
    up = False
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not up:
        assert proc.poll() is None, log.read_text()
        try:
            up = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            time.sleep(0.2)
    if not up:
        proc.terminate()
        proc.wait(timeout=30)
        raise AssertionError(f"the gateway did not come up: {log.read_text()}")
    return proc, port


def test_workers_slower_to_start_than_uvicorns_health_check_are_waited_for(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SLOW_START, encoding="utf-8")
    paths = [str(tmp_path / "site"), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    proc, _ = _serve(tmp_path, 2, {"PYTHONPATH": os.pathsep.join(paths)})
    try:
        workers = _children(proc.pid)
        time.sleep(2)  # the supervisor checks every half second: a worker it replaced would show a new pid
        assert len(workers) == 2 and _children(proc.pid) == workers
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_an_idle_client_connection_outlives_the_clients_own_keep_alive(tmp_path: Path) -> None:
    proc, port = _serve(tmp_path, 1)
    request = f"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\r\n".encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            for idle in (0, 6):  # the second request on the same connection, after 6 s idle
                time.sleep(idle)
                conn.sendall(request)
                answer = _response(conn)
                assert answer.startswith(b"HTTP/1.1 200"), answer
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _response(conn: socket.socket) -> bytes:
    """One whole HTTP/1.1 response (head and `content-length` body), however the bytes arrive in segments."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, f"the connection closed: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        0,
    )
    while len(body) < length:
        chunk = conn.recv(65536)
        assert chunk, f"the connection closed mid-body: {data!r}"
        body += chunk
    return head + b"\r\n\r\n" + body


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
