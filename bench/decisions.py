"""Budget decisions per second: reserve+settle pairs through each budget store, one caller and many.

Each group of rows is one function returning `Row`s; `print_table` prints them. Baselines: for Redis,
`redis-benchmark`'s EVALSHA rate of a trivial script (`return 1`) measured in the same run, compared with our
operations/s (a pair is two operations, reserve and settle, each one script's work; concurrent async ones share a
script call); for the in-process store, the 50,000 pairs/s target; for the engine end to end (Governor
admit+settle), bare memory-store pairs measured in the same run. Async rows run on uvloop, as the gateway does.
To add rows, write a function `(args) -> list[Row]` and add it to `ROW_GROUPS`.

    .venv/bin/python bench/decisions.py --seconds 3 [--redis-url redis://127.0.0.1:6379/0] [--processes 2]
        [--rows memory,engine,sqlite,redis]

Against the code before the durable settle (outbox, group commit; commit bc67071), each side's own bench and
source on one 2-core shared machine, `--seconds 1`, run A B A B, best of the two rounds, pairs/s (A = with the
outbox and everything landed since, B = bc67071):

    row                                   A         B
    sqlite, 1 caller                  7,061     6,729   the outbox row is in the same transaction;
    sqlite, 4 threads                 5,438     4,310   group commit more than pays for it
    sqlite, 2 processes               6,155     3,923
    redis, 1 caller (sync)            6,060     6,242   XADD in the same script: within noise
    redis, 32 async tasks            21,623    23,592
    redis, 2 processes x 32 async    25,026    24,295
    memory, 1 caller                261,823   276,872
    memory, 4 threads               123,883   225,821   not the outbox (the memory store keeps none on a
    engine admit+settle, 1 caller    28,260    46,684   bare settle): slower since, by what the engine and the
    engine admit+settle, 4 threads   27,270    44,801   memory store took on after bc67071; not yet bisected

Since then a call with nothing cached, routed or trimmed takes its ungoverned cost as its cost instead of pricing
itself again: engine admit+settle, 1 caller, 25,816-28,174 → 31,187-31,565 pairs/s (A B A B, same run); the rest of
the gap to bc67071 is spread over planning, calibration and the step drivers (no single hot spot in a profile).

The SQLite store then read its reap batch, the id's lease, the settled check and the counters in one statement per
reserve (the marker in the same one per settle), and released and spent a counter in one upsert: a reserve+settle
pair with the engine's four lines (two budgets, each `b:` and `h:`) and an outbox record runs 755,364 → 654,313
instructions (-13 %; valgrind callgrind, the difference between 100 and 300 pairs, so start-up cancels), with the
same 21 pwrite calls (about ten WAL frames) and 12 fcntl lock calls per pair (strace -c): most of a pair's time is
its two COMMITs, so pairs/s move by less than this shared machine's noise (per CPU second, 0.96-1.36x in five
A/B rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import uvloop

from fiscus.stores import Amounts, BudgetStore, Limits, Reservation, ReserveLine, open_store

MEMORY_TARGET = 50_000  # pairs/s in-process on one core
LEASE = 60.0
ACTUAL = Amounts(1_200, 300, 1)


@dataclass
class Row:
    name: str
    pairs: int
    seconds: float
    latencies_us: list[float] = field(default_factory=list)
    ops_per_pair: int = 0  # Redis store operations (a reserve, a settle) per pair; 0: not a network store
    baseline: tuple[str, float] | None = None  # (what, ops/s) the row is compared with
    warm_pairs: int = 0  # pairs run before measuring (they count on the server too)

    @property
    def rate(self) -> float:
        return self.pairs / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_us)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    def versus(self) -> str:
        if self.baseline is None:
            return ""
        what, ops = self.baseline
        mine = self.rate * (self.ops_per_pair or 1)
        return f"{mine / ops:.2f}x {what}"


def print_table(rows: list[Row]) -> None:
    print(f"{'row':<44} {'pairs/s':>10} {'ops/s':>10} {'p50 µs':>9} {'p99 µs':>9}  vs baseline")
    for row in rows:
        ops = f"{row.rate * row.ops_per_pair:,.0f}" if row.ops_per_pair else "-"
        print(
            f"{row.name:<44} {row.rate:>10,.0f} {ops:>10} {row.percentile(0.5):>9.1f} "
            f"{row.percentile(0.99):>9.1f}  {row.versus()}"
        )


# -- the workload: a request against an org budget and a team budget, never refused ------------------------


def request(team: int) -> tuple[ReserveLine, ...]:
    amount = Amounts(5_000, 2_000, 1)
    return (
        ReserveLine("org", ("org:2026-11",), Limits(nanos=10**15), amount, expires_at=time.time() + 30 * 86400),
        ReserveLine(f"team{team}", (f"team{team}:2026-11",), Limits(nanos=10**15, requests=10**12), amount),
    )


def run_sync(store: BudgetStore, name: str, deadline: float, latencies: list[float]) -> int:
    lines = request(hash(name) % 4)
    pairs = 0
    clock, timer = time.time, time.perf_counter
    while timer() < deadline:
        for _ in range(100):
            start = timer()
            reservation = store.reserve(f"{name}{pairs}", lines, now=clock(), lease_seconds=LEASE)
            assert isinstance(reservation, Reservation)
            store.settle(reservation, ACTUAL, now=clock())
            latencies.append((timer() - start) * 1e6)
            pairs += 1
    return pairs


async def run_async(store: BudgetStore, name: str, deadline: float, latencies: list[float]) -> int:
    lines = request(hash(name) % 4)
    pairs = 0
    clock, timer = time.time, time.perf_counter
    while timer() < deadline:
        start = timer()
        reservation = await store.areserve(f"{name}{pairs}", lines, now=clock(), lease_seconds=LEASE)
        assert isinstance(reservation, Reservation)
        await store.asettle(reservation, ACTUAL, now=clock())
        latencies.append((timer() - start) * 1e6)
        pairs += 1
    return pairs


def single(name: str, url: str, seconds: float, **extra: object) -> Row:
    store = open_store(url)
    latencies: list[float] = []
    warm = run_sync(store, uuid.uuid4().hex, time.perf_counter() + 0.2, [])
    start = time.perf_counter()
    pairs = run_sync(store, uuid.uuid4().hex, start + seconds, latencies)
    elapsed = time.perf_counter() - start
    store.close()
    return Row(name, pairs, elapsed, latencies, warm_pairs=warm, **extra)  # type: ignore[arg-type]


def threaded(name: str, url: str, seconds: float, threads: int, **extra: object) -> Row:
    store = open_store(url)
    latencies: list[float] = []
    counts: list[int] = []
    start = time.perf_counter()
    workers = [
        threading.Thread(target=lambda: counts.append(run_sync(store, uuid.uuid4().hex, start + seconds, latencies)))
        for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    store.close()
    return Row(name, sum(counts), elapsed, latencies, **extra)  # type: ignore[arg-type]


async def _tasks(
    url: str, seconds: float, tasks: int, start_at: float | None = None
) -> tuple[int, float, list[float], int]:
    store = open_store(url)
    warm = await run_async(store, uuid.uuid4().hex, time.perf_counter() + 0.2, [])  # open connections
    if start_at is not None:
        await asyncio.sleep(max(0.0, start_at - time.time()))
    latencies: list[float] = []
    start = time.perf_counter()
    counts = await asyncio.gather(
        *(run_async(store, uuid.uuid4().hex, start + seconds, latencies) for _ in range(tasks))
    )
    elapsed = time.perf_counter() - start
    await store.aclose()
    return sum(counts), elapsed, latencies, warm


def _process_entry(url: str, seconds: float, tasks: int, start_at: float) -> tuple[int, float, list[float], int]:
    return uvloop.run(_tasks(url, seconds, tasks, start_at))


def tasks_row(name: str, url: str, seconds: float, tasks: int, **extra: object) -> Row:
    pairs, elapsed, latencies, warm = uvloop.run(_tasks(url, seconds, tasks))
    return Row(name, pairs, elapsed, latencies, warm_pairs=warm, **extra)  # type: ignore[arg-type]


def processes_row(name: str, url: str, seconds: float, processes: int, tasks: int, **extra: object) -> Row:
    start_at = time.time() + 3.0  # every process has imported, connected and warmed up by then
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        results = pool.starmap(_process_entry, [(url, seconds, tasks, start_at)] * processes)
    latencies = [value for _, _, sample, _ in results for value in sample]
    pairs, elapsed, warm = sum(r[0] for r in results), max(r[1] for r in results), sum(r[3] for r in results)
    return Row(name, pairs, elapsed, latencies, warm_pairs=warm, **extra)  # type: ignore[arg-type]


# -- baselines ------------------------------------------------------------------------------------------


def redis_benchmark_evalsha(redis_url: str, requests: int = 100_000, clients: int = 32) -> float:
    """EVALSHA of `return 1` through redis-benchmark against the same server: the server's raw script rate."""
    import redis

    if shutil.which("redis-benchmark") is None:
        raise SystemExit("redis-benchmark not found (apt-get install redis-tools)")
    client = redis.Redis.from_url(redis_url)
    sha = client.script_load("return 1")
    client.close()
    parsed = urlparse(redis_url)
    command = ["redis-benchmark", "-h", parsed.hostname or "127.0.0.1", "-p", str(parsed.port or 6379)]
    command += ["--dbnum", (parsed.path or "/0").lstrip("/") or "0", "-n", str(requests), "-c", str(clients), "-q"]
    output = subprocess.run([*command, "EVALSHA", sha, "0"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"([\d.]+) requests per second", output.replace("\r", "\n"))
    if match is None:
        raise SystemExit(f"could not read redis-benchmark output: {output!r}")
    return float(match.group(1))


# -- rows -----------------------------------------------------------------------------------------------


def memory_rows(args: argparse.Namespace) -> list[Row]:
    target = ("target 50k pairs/s", float(MEMORY_TARGET))
    return [
        single("memory, 1 caller", "memory://", args.seconds, baseline=target),
        threaded("memory, 4 threads", "memory://", args.seconds, 4, baseline=target),
        tasks_row("memory, 32 asyncio tasks", "memory://", args.seconds, 32, baseline=target),
    ]


def sqlite_rows(args: argparse.Namespace) -> list[Row]:
    folder = Path(tempfile.mkdtemp(prefix="fiscus-bench-"))
    url = f"sqlite:///{folder / 'budgets.db'}"
    rows = [
        single("sqlite, 1 caller", url, args.seconds),
        threaded("sqlite, 4 threads", url, args.seconds, 4),
        processes_row(f"sqlite, {args.processes} processes", url, args.seconds, args.processes, 1),
    ]
    shutil.rmtree(folder, ignore_errors=True)
    return rows


def script_server_time(redis_url: str) -> tuple[int, int, int, float]:
    """(script calls, their µs, other commands, server CPU seconds) so far on the server, from INFO: scripts are
    EVALSHA and FCALL (the store calls its functions library where it can); the other commands are mostly the
    redis.calls made inside scripts. Every client of the server counts."""
    import redis

    client = redis.Redis.from_url(redis_url)
    stats = client.info("commandstats")
    cpu = client.info("cpu")
    client.close()
    scripts = [stats.get(name, {"calls": 0, "usec": 0}) for name in ("cmdstat_evalsha", "cmdstat_fcall")]
    inner = sum(
        int(v["calls"]) for k, v in stats.items() if k not in ("cmdstat_evalsha", "cmdstat_fcall", "cmdstat_info")
    )
    used = float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
    return sum(int(v["calls"]) for v in scripts), sum(int(v["usec"]) for v in scripts), inner, used


def redis_rows(args: argparse.Namespace) -> list[Row]:
    """A store operation (reserve or settle) is one script's worth of work, so ops/s is set beside redis-benchmark's
    rate of a trivial script. Concurrent async operations of one event loop share a script call (lua/batch.lua):
    script calls per pair fall below 2 as concurrency rises."""
    before = script_server_time(args.redis_url)
    raw = redis_benchmark_evalsha(args.redis_url)
    after_raw = script_server_time(args.redis_url)
    baseline = ("raw EVALSHA", raw)
    prefix = f"fiscus-bench-{uuid.uuid4().hex[:8]}"
    url = f"{args.redis_url}?prefix={prefix}"
    rows = [
        single("redis, 1 caller (sync)", url, args.seconds, ops_per_pair=2, baseline=baseline),
        tasks_row("redis, 32 async tasks", url, args.seconds, 32, ops_per_pair=2, baseline=baseline),
        processes_row(
            f"redis, {args.processes} processes x 32 async tasks",
            url,
            args.seconds,
            args.processes,
            32,
            ops_per_pair=2,
            baseline=baseline,
        ),
    ]
    after = script_server_time(args.redis_url)
    raw_us = (after_raw[1] - before[1]) / max(1, after_raw[0] - before[0])
    pairs = sum(row.pairs + row.warm_pairs for row in rows)
    ops = 2 * pairs
    ours_us = (after[1] - after_raw[1]) / ops
    cpu_us = (after[3] - after_raw[3]) * 1e6 / ops
    print(f"redis-benchmark EVALSHA 'return 1' (-c 32): {raw:,.0f} scripts/s")
    print(
        f"server per operation: {ours_us:.1f} µs in scripts, {cpu_us:.1f} µs of CPU ('return 1': {raw_us:.1f} µs; the "
        f"server alone caps operations near {1e6 / ours_us:,.0f}/s = {1e6 / ours_us / raw:.2f}x raw); per pair "
        f"{(after[0] - after_raw[0]) / pairs:.2f} script calls, {(after[2] - after_raw[2]) / pairs:.1f} redis.calls"
    )
    _drop_prefix(args.redis_url, prefix)
    return rows


def _drop_prefix(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    batch = list(client.scan_iter(match=f"*{prefix}*", count=1000))
    for i in range(0, len(batch), 1000):
        client.delete(*batch[i : i + 1000])
    client.close()


def engine_rows(args: argparse.Namespace) -> list[Row]:
    """The engine end to end: `Governor.admit` + `settle` (plan, decide and reserve; price, settle, build the
    CostEvent) over two budgets (per team, per user) on an in-process store, one caller and 4 threads sharing one
    governor, each compared with bare store pairs (one caller) measured in the same run."""
    from fiscus.attribution import Attribution
    from fiscus.governor import CallRequest, Governor
    from fiscus.policy import parse_policy
    from fiscus.pricing import PriceCatalogue
    from fiscus.usage import Usage

    policy = parse_policy(
        {
            "budgets": [
                {"name": "team", "scope": {"team": "*"}, "window": "month", "limit": {"usd": 10**9}},
                {"name": "user", "scope": {"user": "*"}, "window": "day", "limit": {"usd": 10**9}},
            ]
        }
    )
    requests = [
        CallRequest("openai", "gpt-4o-mini", Attribution(team=f"t{i % 8}", user=f"u{i % 64}"), 1000 + i, 200)
        for i in range(64)
    ]
    usage = Usage(input_tokens=1000, output_tokens=150)

    def run(governor: Governor, deadline: float, latencies: list[float]) -> int:
        pairs, timer = 0, time.perf_counter
        admit, settle = governor.admit, governor.settle
        while timer() < deadline:
            for _ in range(100):
                t0 = timer()
                settle(admit(requests[pairs % 64]), usage)
                latencies.append((timer() - t0) * 1e6)
                pairs += 1
        return pairs

    cpu: dict[int, float] = {}  # threads → CPU seconds the process used while measuring

    def measure(threads: int) -> Row:
        governor = Governor(policy=policy, store=open_store("memory://"), catalogue=PriceCatalogue())
        run(governor, time.perf_counter() + 0.2, [])  # warm up: sheets, plan shapes, window instances
        latencies: list[float] = []
        counts: list[int] = []
        cpu_start = time.process_time()
        start = time.perf_counter()
        workers = [
            threading.Thread(target=lambda: counts.append(run(governor, start + args.seconds, latencies)))
            for _ in range(threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - start
        cpu[threads] = time.process_time() - cpu_start
        governor.close()
        name = f"engine admit+settle, memory, {'1 caller' if threads == 1 else f'{threads} threads'}"
        return Row(name, sum(counts), elapsed, latencies, baseline=("bare store pairs", bare.rate))

    bare = single("memory store alone (same run)", "memory://", args.seconds)
    rows = [bare, measure(1), measure(4)]
    print(f"engine target: {MEMORY_TARGET:,} admit+settle pairs/s in-process on one core")
    # On a shared machine the wall clock also counts time the process waited for a core; per CPU second is
    # what one core does when it has the process to itself.
    for row, threads in zip(rows[1:], (1, 4), strict=True):
        print(f"{row.name}: {row.pairs / cpu[threads]:,.0f} pairs per CPU second")
    return rows


ROW_GROUPS: dict[str, Callable[[argparse.Namespace], list[Row]]] = {
    "memory": memory_rows,
    "engine": engine_rows,
    "sqlite": sqlite_rows,
    "redis": redis_rows,
}


def rows(args: argparse.Namespace) -> list[Callable[[argparse.Namespace], list[Row]]]:
    wanted = [name.strip() for name in args.rows.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in ROW_GROUPS]
    if unknown:
        raise SystemExit(f"unknown row group(s) {', '.join(unknown)}; known: {', '.join(ROW_GROUPS)}")
    return [ROW_GROUPS[name] for name in wanted if name != "redis" or args.redis_url]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per row")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="empty string: skip Redis rows")
    parser.add_argument("--processes", type=int, default=2, help="processes for the multi-process rows")
    parser.add_argument("--rows", default=",".join(ROW_GROUPS), help="row groups to run, e.g. engine or memory,engine")
    args = parser.parse_args()
    results: list[Row] = []
    for make in rows(args):
        results.extend(make(args))
    print_table(results)


if __name__ == "__main__":
    main()
