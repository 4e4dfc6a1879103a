"""The upstream HTTP client: httpx.AsyncClient, aiohttp and fiscus's own (fiscus.providers.transport), against the
emulator on loopback.

Run: .venv/bin/python bench/upstream_client.py [--requests 2000] [--rounds 3]
Measures requests/s, p50 latency and the calling process's CPU per call (the emulator runs in its own process)
for a JSON chat completion and a streamed (SSE, 28 events) one, at concurrency 1 and 16, every client pooled
with keep-alive; the best of `--rounds` rounds per case. CPU per call is what the gateway pays for its upstream
side, and it is barely moved by other load on a shared machine, unlike req/s.

History: aiohttp replaced httpx first (1.5-3.8x the throughput). Then (shared 2-core box, load average ~3,
uvloop, 1,000 calls, best of 3), CPU µs per call httpx / aiohttp / fiscus: JSON c=1 1240 / 250 / 123, c=16
2236 / 204 / 100; SSE c=1 1851 / 595 / 371, c=16 3634 / 549 / 465 (SSE costs one wake-up and read per event
in every client). So fiscus.providers uses its own.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
import orjson

from fiscus.providers.transport import Timeouts, Transport

BODY = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]})
STREAM_BODY = orjson.dumps({"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hello"}]})
HEADERS = {"authorization": "Bearer sk-bench", "content-type": "application/json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_emulator() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fiscus.cli.main", "emulate", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(base + "/healthz", timeout=0.5).read()
            return proc, base
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the emulator did not start")


async def run_case(call: Callable[[], Awaitable[None]], requests: int, concurrency: int) -> tuple[float, float, float]:
    """(requests/s, p50 ms, CPU µs per call) of `requests` calls, `concurrency` at a time."""
    for _ in range(20):  # warm the pool
        await call()
    latencies: list[float] = []
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            t0 = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - t0)

    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return len(latencies) / elapsed, statistics.median(latencies) * 1000, cpu / requests * 1e6


CLIENTS = ("httpx", "aiohttp", "fiscus")


async def bench(base: str, requests: int, rounds: int) -> list[tuple[str, int, dict[str, tuple[float, float, float]]]]:
    url = base + "/v1/chat/completions"
    timeouts = Timeouts(connect_s=5.0, read_s=60.0)
    rows = []
    transport = Transport()
    async with (
        httpx.AsyncClient(limits=httpx.Limits(max_connections=64, max_keepalive_connections=64)) as hx,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as ah,
    ):

        async def hx_call(body: bytes) -> None:
            async with hx.stream("POST", url, content=body, headers=HEADERS) as r:
                assert r.status_code == 200
                async for _ in r.aiter_raw():
                    pass

        async def ah_call(body: bytes) -> None:
            async with ah.post(url, data=body, headers=HEADERS) as r:
                assert r.status == 200
                async for _ in r.content.iter_any():
                    pass

        async def fiscus_call(body: bytes) -> None:
            answer = await transport.open(url, HEADERS, body, timeouts)
            try:
                assert answer.status == 200
                while await answer.read_chunk():
                    pass
            finally:
                answer.close()

        calls = {"httpx": hx_call, "aiohttp": ah_call, "fiscus": fiscus_call}
        for mode, body in (("json", BODY), ("sse", STREAM_BODY)):
            for concurrency in (1, 16):
                best: dict[str, tuple[float, float, float]] = {}
                for _ in range(rounds):
                    for name in CLIENTS:
                        call = calls[name]
                        run = await run_case(functools.partial(call, body), requests, concurrency)
                        old = best.get(name)
                        best[name] = (
                            run if old is None else (max(old[0], run[0]), min(old[1], run[1]), min(old[2], run[2]))
                        )
                rows.append((mode, concurrency, best))
    await transport.aclose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    proc, base = start_emulator()
    try:
        runner = asyncio.run
        try:
            import uvloop

            runner = uvloop.run  # type: ignore[assignment]  # the loop the gateway serves on
        except ImportError:
            pass
        rows = runner(bench(base, args.requests, args.rounds))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"best of {args.rounds} rounds: req/s, p50 ms, CPU µs per call of this process")
    print(f"{'case':<10}" + "".join(f"{name + ' req/s':>15}{'p50':>7}{'CPU µs':>8}" for name in CLIENTS))
    for mode, concurrency, best in rows:
        cells = "".join(f"{best[n][0]:>15.0f}{best[n][1]:>7.2f}{best[n][2]:>8.0f}" for n in CLIENTS)
        print(f"{mode + f' c={concurrency}':<10}{cells}")


if __name__ == "__main__":
    main()
