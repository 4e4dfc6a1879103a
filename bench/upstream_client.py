"""httpx.AsyncClient vs aiohttp as the upstream HTTP client, against the emulator on loopback.

Run: .venv/bin/python bench/upstream_client.py [--requests 400]
Measures requests/s and p50 latency for a JSON chat completion and a streamed (SSE) one, at concurrency 1
and 16, both clients pooled with keep-alive, the emulator in its own process (uvloop) so it does not share
the clients' GIL. Prints aiohttp/httpx ratios (> 1 means aiohttp is faster).

Measured on the shared 2-core dev box (400 requests per case; absolute numbers swing with machine load,
the ratio held across two runs), req/s and p50 ms:
    case        httpx req/s  p50 ms   aiohttp req/s  p50 ms   ratio
    json c=1          277      2.31        755          0.80   2.72x   (second run 2.15x)
    json c=16         259     36.02        720         21.56   2.78x   (second run 3.83x)
    sse  c=1          174      4.43        321          1.98   1.84x   (second run 1.45x)
    sse  c=16          93     94.25        179         84.38   1.93x   (second run 2.20x)
aiohttp won every case, so fiscus.providers uses it.
"""

from __future__ import annotations

import argparse
import asyncio
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


async def run_case(call: Callable[[], Awaitable[None]], requests: int, concurrency: int) -> tuple[float, float]:
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

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, statistics.median(latencies) * 1000


async def bench(base: str, requests: int) -> list[tuple[str, int, float, float, float, float]]:
    url = base + "/v1/chat/completions"
    rows = []
    async with (
        httpx.AsyncClient(limits=httpx.Limits(max_connections=64, max_keepalive_connections=64)) as hx,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as ah,
    ):

        async def hx_json() -> None:
            r = await hx.post(url, content=BODY, headers=HEADERS)
            assert r.status_code == 200

        async def ah_json() -> None:
            async with ah.post(url, data=BODY, headers=HEADERS) as r:
                assert r.status == 200
                await r.read()

        async def hx_sse() -> None:
            async with hx.stream("POST", url, content=STREAM_BODY, headers=HEADERS) as r:
                assert r.status_code == 200
                async for _ in r.aiter_raw():
                    pass

        async def ah_sse() -> None:
            async with ah.post(url, data=STREAM_BODY, headers=HEADERS) as r:
                assert r.status == 200
                async for _ in r.content.iter_any():
                    pass

        for mode, (hx_call, ah_call) in {"json": (hx_json, ah_json), "sse": (hx_sse, ah_sse)}.items():
            for concurrency in (1, 16):
                hx_rps, hx_p50 = await run_case(hx_call, requests, concurrency)
                ah_rps, ah_p50 = await run_case(ah_call, requests, concurrency)
                rows.append((mode, concurrency, hx_rps, hx_p50, ah_rps, ah_p50))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    proc, base = start_emulator()
    try:
        rows = asyncio.run(bench(base, args.requests))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"{'case':<10} {'httpx req/s':>12} {'p50 ms':>8} {'aiohttp req/s':>14} {'p50 ms':>8} {'ratio':>7}")
    for mode, concurrency, hx_rps, hx_p50, ah_rps, ah_p50 in rows:
        case = f"{mode} c={concurrency}"
        print(f"{case:<10} {hx_rps:>12.0f} {hx_p50:>8.2f} {ah_rps:>14.0f} {ah_p50:>8.2f} {ah_rps / hx_rps:>6.2f}x")


if __name__ == "__main__":
    main()
