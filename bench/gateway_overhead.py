"""What the gateway adds: the same load sent straight to the emulator and through the gateway, in one run.

    .venv/bin/python bench/gateway_overhead.py [--requests 600] [--concurrency 1,16,64]

The emulator and the gateway (`fiscus serve`, one worker, SQLite budget store and ledger, a policy with one
team budget so every call reserves and settles) run as their own processes; this process only generates load
(aiohttp, keep-alive). On a 2-core machine the three processes share the cores, so the gateway gets about one
core and the absolute numbers are pessimistic; the ratios are measured in the same run. For each concurrency,
streamed and not, it prints p50/p99 latency direct and through the gateway, the added p50/p99 and the RPS
ratio. If LiteLLM's proxy is installed (a `litellm` command on PATH, kept out of the project venv), the same
load goes through it too, side by side. The gateway's RSS is printed at the start and the end of the run.
Targets: added p50 <= 1 ms at concurrency 1 and <= 5 ms at 16.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

PY = sys.executable
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello."}]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_up(url: str, timeout: float = 20) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:  # any HTTP answer means the server is up
            return
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} did not come up")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def gateway_pid(parent: int) -> int:
    """`fiscus serve` with one worker serves in its own process; with a reloader-less single worker it is the
    parent itself."""
    children = Path(f"/proc/{parent}/task/{parent}/children")
    kids = children.read_text().split() if children.exists() else []
    return int(kids[0]) if kids else parent


async def run_load(url: str, headers: dict[str, str], stream: bool, concurrency: int, total: int) -> list[float]:
    body = {**BODY, "stream": stream}
    latencies: list[float] = []
    remaining = total
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                start = time.perf_counter()
                async with session.post(url, json=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise SystemExit(f"{url}: HTTP {response.status}: {(await response.text())[:200]}")
                latencies.append(time.perf_counter() - start)

        # Warm the connections and caches first.
        for _ in range(min(20, total)):
            async with session.post(url, json=body, headers=headers) as response:
                await response.read()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def measure(
    url: str, headers: dict[str, str], stream: bool, concurrency: int, total: int
) -> tuple[float, float, float]:
    start = time.perf_counter()
    latencies = asyncio.run(run_load(url, headers, stream, concurrency, total))
    elapsed = time.perf_counter() - start
    cuts = statistics.quantiles(latencies, n=100)
    return cuts[49] * 1000, cuts[98] * 1000, len(latencies) / elapsed


def start_litellm(emulator: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    binary = shutil.which("litellm")
    if binary is None:
        return None
    port = free_port()
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n  - model_name: gpt-4o-mini\n    litellm_params:\n      model: openai/gpt-4o-mini\n"
        f"      api_base: {emulator}/v1\n      api_key: sk-emulator\n"
    )
    proc = subprocess.Popen(
        [binary, "--config", str(config), "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_up(f"http://127.0.0.1:{port}/health/liveliness", timeout=60)
    return proc, f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600, help="requests per case")
    parser.add_argument("--concurrency", default="1,16,64")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="fiscus-bench-"))
    emu_port, gw_port = free_port(), free_port()
    emulator = f"http://127.0.0.1:{emu_port}"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(
            subprocess.Popen(
                [
                    PY,
                    "-c",
                    (
                        "import uvicorn; from fiscus.emulator import create_app; "
                        f"uvicorn.run(create_app(None), port={emu_port}, log_level='warning', "
                        "access_log=False, loop='uvloop')"
                    ),
                ]
            )
        )
        wait_up(f"{emulator}/v1/models")
        config = workdir / "fiscus.yaml"
        policy = workdir / "policy.yaml"
        policy.write_text(
            "version: 1\nbudgets:\n  - name: perf-daily\n    scope: {team: perf}\n    window: day\n"
            "    limit: {usd: 1000000}\n"
        )
        config.write_text(
            f"policy: {policy}\nledger: sqlite:///{workdir}/ledger.db\nbudget_store: sqlite:///{workdir}/budgets.db\n"
            f"keys: sqlite:///{workdir}/keys.db\nproviders:\n  openai:\n    kind: openai\n"
            f"    base_url: {emulator}/v1\n    api_key_env: BENCH_UPSTREAM_KEY\n    models: ['gpt-4o-mini']\n"
        )
        from fiscus.keys import KeyRing, open_key_store

        key, _ = KeyRing(open_key_store(f"sqlite:///{workdir}/keys.db")).create(
            agent="bench", team="perf", environment="bench"
        )
        env = {**os.environ, "BENCH_UPSTREAM_KEY": "sk-emulator"}
        serve = subprocess.Popen(
            [PY, "-m", "fiscus.cli.main", "serve", "-c", str(config), "--port", str(gw_port), "--workers", "1"], env=env
        )
        procs.append(serve)
        gateway = f"http://127.0.0.1:{gw_port}"
        wait_up(f"{gateway}/healthz")
        pid = gateway_pid(serve.pid)
        litellm = start_litellm(emulator, workdir)
        if litellm:
            procs.append(litellm[0])
        print(f"gateway RSS at start: {rss_mb(pid):.1f} MB")
        upstream_auth = {"authorization": "Bearer sk-emulator"}
        gateway_auth = {"authorization": f"Bearer {key}"}
        header = f"{'case':<18}{'direct p50/p99':>18}{'gateway p50/p99':>18}{'added p50/p99':>16}{'RPS ratio':>11}"
        print(header + ("  litellm added p50/p99  RPS ratio" if litellm else ""))
        for stream in (False, True):
            for level in levels:
                total = max(args.requests, level * 10)
                d50, d99, drps = measure(f"{emulator}/v1/chat/completions", upstream_auth, stream, level, total)
                g50, g99, grps = measure(f"{gateway}/v1/chat/completions", gateway_auth, stream, level, total)
                line = (
                    f"{('stream' if stream else 'json') + f' c={level}':<18}{d50:>8.2f}/{d99:<8.2f} ms"
                    f"{g50:>8.2f}/{g99:<8.2f} ms{g50 - d50:>7.2f}/{g99 - d99:<7.2f}ms{grps / drps:>10.2f}"
                )
                if litellm:
                    l50, l99, lrps = measure(f"{litellm[1]}/v1/chat/completions", upstream_auth, stream, level, total)
                    line += f"  {l50 - d50:>10.2f}/{l99 - d99:<9.2f}ms {lrps / drps:>8.2f}"
                print(line, flush=True)
        if not litellm:
            print(
                "LiteLLM proxy not installed (no `litellm` on PATH): comparison skipped. "
                "Install it outside the project venv: pipx install 'litellm[proxy]'"
            )
        print(f"gateway RSS at end:   {rss_mb(pid):.1f} MB")
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
