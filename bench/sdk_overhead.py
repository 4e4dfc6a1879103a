"""What `fiscus.wrap` adds to a call: wrapped vs bare OpenAI client against the emulator, in one run.

Calls alternate (bare, wrapped, bare, …) so drift and noise hit both alike. The emulator runs in its own
process (`fiscus emulate`), so its work does not compete with the measured client for the GIL. The governor
is the embedded kind (memory store, a ledger that drops events). Prints mean and p50 added µs per call
and the ratio of wrapped to bare time. Target: ≤ 100 µs added per call.

    .venv/bin/python bench/sdk_overhead.py [calls]
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai

import fiscus
from fiscus.governor import Governor
from fiscus.guards.registry import BreakerRegistry
from fiscus.policy.load import parse_policy
from fiscus.pricing.catalogue import PriceCatalogue
from fiscus.stores import open_store

MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a colour."}]
BUDGETS = [
    {"name": "team-month", "scope": {"team": "growth"}, "window": "month", "limit": {"usd": 1_000_000}},
    {"name": "agent-day", "scope": {"agent": "bench"}, "window": "day", "limit": {"usd": 100_000}},
]


class NullLedger:
    def submit(self, event: object) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


@contextmanager
def emulator_process() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exe = Path(sys.executable).parent / "fiscus"
    proc = subprocess.Popen([str(exe), "emulate", "--port", str(port)], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/_emulator/stats", timeout=0.5)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the emulator did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main(calls: int) -> None:
    governor = Governor(
        policy=parse_policy({"budgets": BUDGETS}),
        store=open_store("memory://"),
        catalogue=PriceCatalogue(),
        ledger=NullLedger(),
    )
    with emulator_process() as url:
        bare = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-bench", max_retries=0)
        wrapped = fiscus.wrap(
            openai.OpenAI(base_url=f"{url}/v1", api_key="sk-bench", max_retries=0),
            agent="bench",
            team="growth",
            governor=governor,
            breakers=BreakerRegistry(postmortem_dir=None),
        )
        for client in (bare, wrapped):  # warm connections, caches and the price sheet
            for i in range(20):
                warm = [MESSAGES[0], {"role": "user", "content": f"Warm up {i} {'x' * i}"}]
                client.chat.completions.create(model="gpt-4o-mini", messages=warm, max_tokens=16)
        bare_t: list[float] = []
        wrapped_t: list[float] = []
        for i in range(calls):
            content = f"Name a colour, variation {i}."  # distinct requests, as an agent would send
            messages = [MESSAGES[0], {"role": "user", "content": content}]
            order = ((bare, bare_t), (wrapped, wrapped_t))
            for client, times in order if i % 2 else order[::-1]:
                t0 = time.perf_counter()
                client.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=16)
                times.append(time.perf_counter() - t0)
    governor_us = _governor_alone(governor, calls)
    added = [w - b for w, b in zip(wrapped_t, bare_t, strict=True)]
    mean_added = statistics.fmean(added) * 1e6
    p50_added = (statistics.median(wrapped_t) - statistics.median(bare_t)) * 1e6
    ratio = statistics.fmean(wrapped_t) / statistics.fmean(bare_t)
    print(f"calls: {calls} each, interleaved; bare mean {statistics.fmean(bare_t) * 1e6:.0f} µs")
    print(f"added per call: mean {mean_added:.1f} µs, p50 {p50_added:.1f} µs")
    print(f"of which governor admit + settle alone: {governor_us:.1f} µs (the SDK's own share is the rest)")
    print(f"wrapped / bare time ratio: {ratio:.3f}  (target: ≤ 100 µs added)")


def _governor_alone(governor: Governor, calls: int) -> float:
    """Mean µs of admit + settle for the same request shape, no SDK and no HTTP around it."""
    from fiscus.attribution import Attribution
    from fiscus.governor import CallRequest
    from fiscus.usage.model import Usage

    attribution = Attribution(agent="bench", team="growth")
    usage = Usage(input_tokens=20, output_tokens=8)
    start = time.perf_counter()
    for _ in range(calls):
        request = CallRequest(
            provider="openai", model="gpt-4o-mini", attribution=attribution, input_tokens=20, max_tokens=16
        )
        governor.settle(governor.admit(request), usage, served_model="gpt-4o-mini")
    return (time.perf_counter() - start) / calls * 1e6


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
