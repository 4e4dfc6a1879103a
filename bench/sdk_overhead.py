"""What `fiscus.wrap` adds to a call: wrapped vs bare OpenAI client against the emulator, in one run.

Calls alternate (bare, wrapped, bare, …) so drift and noise hit both alike. The emulator runs in its own
process (`fiscus emulate`), so its work does not compete with the measured client for the GIL. The governor
is the embedded kind (memory store, a ledger that drops events). Prints mean and p50 added µs per call
(wall clock), the same in CPU time of the calling thread (less noisy: no emulator latency, no preemption), and
the ratio of wrapped to bare time. Target: ≤ 100 µs added per call.

The host's noise moves these figures by 2× from one minute to the next on a small VM, so the calls run in
rounds (`--rounds`, default 5) and each round's p50 is printed: the best round is the machine at its quietest,
the median the typical one; bare and wrapped calls share each round, so the noise hits both.

A second, shorter pass splits the added CPU time in place: the governor's admit + settle, timed inside real
wrapped calls, and the SDK's own rest. Both run slower there than alone in a loop (`governor alone`): between
two calls the HTTP stack and the wait for the response leave the CPU caches cold for fiscus's code and data.

    .venv/bin/python bench/sdk_overhead.py [calls per round] [--rounds 5]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def main(calls: int, rounds: int) -> None:
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
        timed_governor = TimedGovernor(governor)
        timed = fiscus.wrap(
            openai.OpenAI(base_url=f"{url}/v1", api_key="sk-bench", max_retries=0),
            agent="bench",
            team="growth",
            governor=timed_governor,
            breakers=BreakerRegistry(postmortem_dir=None),
        )
        for client in (bare, wrapped, timed):  # warm connections, caches and the price sheet
            for i in range(20):
                warm = [MESSAGES[0], {"role": "user", "content": f"Warm up {i} {'x' * i}"}]
                client.chat.completions.create(model="gpt-4o-mini", messages=warm, max_tokens=16)
        results = [Round(*_interleaved(bare, wrapped, calls)) for _ in range(rounds)]
        timed_governor.spent.clear()
        split_bare_t, split_bare_cpu, _, timed_cpu = _interleaved(bare, timed, max(calls // 2, 1))
    governor_us = _governor_alone(governor, calls)
    in_place = statistics.fmean(timed_governor.spent) * 1e6
    split_added = (statistics.fmean(timed_cpu) - statistics.fmean(split_bare_cpu)) * 1e6
    bare_mean = statistics.fmean(t for r in results for t in r.bare_t) * 1e6
    print(f"calls: {calls} each per round, {rounds} rounds, interleaved; bare mean {bare_mean:.0f} µs")
    print("round  added µs: p50   mean   CPU p50  CPU mean   wrapped/bare")
    for n, r in enumerate(results, 1):
        added = f"{r.p50_added:14.1f} {r.mean_added:6.1f} {r.cpu_p50_added:9.1f} {r.cpu_mean_added:9.1f}"
        print(f"{n:>5}  {added}   {r.ratio:.3f}")
    by_p50 = sorted(r.p50_added for r in results)
    by_cpu = sorted(r.cpu_p50_added for r in results)
    print(
        f"added per call, p50: best round {by_p50[0]:.1f} µs, median round {statistics.median(by_p50):.1f} µs "
        f"(CPU: {by_cpu[0]:.1f} / {statistics.median(by_cpu):.1f} µs); target ≤ 100 µs"
    )
    print(f"governor admit + settle alone, in a loop: {governor_us:.1f} µs")
    print(
        f"in place ({len(split_bare_t)} more calls each): added CPU {split_added:.1f} µs = governor admit + settle "
        f"{in_place:.1f} µs + the SDK's own {split_added - in_place:.1f} µs"
    )


@dataclass
class Round:
    bare_t: list[float]
    bare_cpu: list[float]
    wrapped_t: list[float]
    wrapped_cpu: list[float]

    @property
    def p50_added(self) -> float:
        return (statistics.median(self.wrapped_t) - statistics.median(self.bare_t)) * 1e6

    @property
    def mean_added(self) -> float:
        return (statistics.fmean(self.wrapped_t) - statistics.fmean(self.bare_t)) * 1e6

    @property
    def cpu_p50_added(self) -> float:
        return (statistics.median(self.wrapped_cpu) - statistics.median(self.bare_cpu)) * 1e6

    @property
    def cpu_mean_added(self) -> float:
        return (statistics.fmean(self.wrapped_cpu) - statistics.fmean(self.bare_cpu)) * 1e6

    @property
    def ratio(self) -> float:
        return statistics.fmean(self.wrapped_t) / statistics.fmean(self.bare_t)


def _interleaved(bare: Any, wrapped: Any, calls: int) -> tuple[list[float], list[float], list[float], list[float]]:
    """Wall and thread-CPU seconds of each call: bare and wrapped alternate, each going first every other time."""
    bare_t: list[float] = []
    bare_cpu: list[float] = []
    wrapped_t: list[float] = []
    wrapped_cpu: list[float] = []
    for i in range(calls):
        content = f"Name a colour, variation {i}."  # distinct requests, as an agent would send
        messages = [MESSAGES[0], {"role": "user", "content": content}]
        order = ((bare, bare_t, bare_cpu), (wrapped, wrapped_t, wrapped_cpu))
        for client, times, cpu in order if i % 2 else order[::-1]:
            t0, c0 = time.perf_counter(), time.thread_time()
            client.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=16)
            cpu.append(time.thread_time() - c0)
            times.append(time.perf_counter() - t0)
    return bare_t, bare_cpu, wrapped_t, wrapped_cpu


class TimedGovernor:
    """The governor, its admit and settle timed (thread CPU seconds) inside real wrapped calls."""

    def __init__(self, governor: Governor) -> None:
        self._governor = governor
        self.spent: list[float] = []
        self._admitted = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._governor, name)

    # The SDK drives the governor's steps; a step generator's life, store operations included, is its cost.
    def admit_steps(self, request: Any) -> Any:
        start = time.thread_time()
        try:
            return (yield from self._governor.admit_steps(request))
        finally:
            self._admitted = time.thread_time() - start

    def settle_steps(self, admission: Any, usage: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return (yield from self._governor.settle_steps(admission, usage, **kwargs))
        finally:
            self.spent.append(self._admitted + time.thread_time() - start)


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("calls", nargs="?", type=int, default=600, help="interleaved call pairs per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    main(args.calls, args.rounds)
