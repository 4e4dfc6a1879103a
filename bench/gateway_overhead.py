"""What the gateway adds: the same load sent straight to the emulator, through the gateway and (when installed)
through LiteLLM's proxy, in one run.

    .venv/bin/python bench/gateway_overhead.py [--requests 600] [--concurrency 1,16,64] [--repeat 2]
        [--store memory|sqlite] [--long 20000] [--litellm-bin PATH]

Three kinds of process share the machine: the emulator, the gateway (`fiscus serve`, one worker; the budget
store of `--store`: `memory`, the gateway's default `memory://`, or `sqlite` for a shared file; a SQLite ledger;
a policy with one team budget so every call reserves and settles) and this load generator (aiohttp,
keep-alive). On a 2-core machine they contend for the cores, so absolute numbers are pessimistic; what counts
are the differences and ratios, measured in the same run. Each case is run `--repeat` times, the targets one
after the other within each round, the proxy not being measured stopped (SIGSTOP) meanwhile; the best round and
the spread over rounds are printed (the machine may be shared).

Per case: p50/p99 direct, the p50/p99 the gateway adds, the RPS ratio gateway/direct, and the same for LiteLLM.
Targets: added p50 <= 1 ms at concurrency 1 and <= 5 ms at 16; >= 20x LiteLLM's throughput at 64.
`--long N` then sends N more requests through the gateway and prints its RSS at start, after warm-up and end.
LiteLLM is found via `--litellm-bin`, `$FISCUS_BENCH_LITELLM` or `litellm` on PATH; it belongs in a venv of its
own, never in the project's.

Against the code before the durable settle (commit bc67071), each side's own bench and source, `--requests 200
--concurrency 1,16 --repeat 1 --store sqlite`, run A B A B A B on one 2-core shared machine; the gateway's CPU
µs per request, lowest of the rounds (the added p50 spreads too widely between rounds here to compare):

    case          bc67071   the outbox commit (e80ef72)   with group commit and what landed since
    json c=1          739            887                          1034
    json c=16         605            726                          968
    stream c=1        985           1133                          1576
    stream c=16       766           1452                          1048

Above noise: the outbox commit cost the stream case at c=16 most, and group commit took back about half of it;
the rest of today's gap is shared with what landed after it (the engine rows of bench/decisions.py show the
same). Not yet bisected further.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp

PY = sys.executable
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello."}]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_up(url: str, timeout: float = 20, proc: subprocess.Popen[bytes] | None = None) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the server for {url} exited with status {proc.returncode}")
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
    """`fiscus serve` with one worker serves in its own process (uvicorn's single-worker mode) or in a child."""
    kids = child_pids(parent)
    return kids[0] if kids else parent


@dataclass(frozen=True)
class Run:
    p50: float  # ms
    p99: float  # ms
    rps: float
    cpu_us: float = 0.0  # the proxy's CPU time per request (all its threads and processes), µs


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of `pids` and their children so far: unlike latency, barely moved by other load."""
    total = 0
    for pid in pids:
        for one in (pid, *child_pids(pid)):
            fields = Path(f"/proc/{one}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def measure_proxy(url: str, headers: dict[str, str], stream: bool, concurrency: int, total: int, pid: int) -> Run:
    before = cpu_seconds([pid])
    run = measure(url, headers, stream, concurrency, total)
    requests = total + 3 * concurrency  # the warm-up requests count too
    return replace(run, cpu_us=(cpu_seconds([pid]) - before) / requests * 1e6)


async def run_load(url: str, headers: dict[str, str], stream: bool, concurrency: int, total: int) -> Run:
    body = {**BODY, "stream": stream}
    latencies: list[float] = []
    remaining = total
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    # A request stuck for a minute fails the run instead of hanging it.
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

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

        async def warm() -> None:  # open every connection and warm the caches first
            for _ in range(3):
                async with session.post(url, json=body, headers=headers) as response:
                    await response.read()

        await asyncio.gather(*(warm() for _ in range(concurrency)))
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    cuts = statistics.quantiles(latencies, n=100)
    return Run(cuts[49] * 1000, cuts[98] * 1000, len(latencies) / elapsed)


def measure(url: str, headers: dict[str, str], stream: bool, concurrency: int, total: int) -> Run:
    runner = asyncio.run
    try:
        import uvloop

        runner = uvloop.run  # type: ignore[assignment]  # a lighter load generator leaves more CPU to the servers
    except ImportError:
        pass
    return runner(run_load(url, headers, stream, concurrency, total))


@contextlib.contextmanager
def paused(proc: subprocess.Popen[bytes] | None) -> Iterator[None]:
    """Stop a server that is not being measured, so its background work takes no CPU from the one that is."""
    targets = [] if proc is None else [proc.pid, *child_pids(proc.pid)]
    for pid in targets:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in targets:
            os.kill(pid, signal.SIGCONT)


def child_pids(parent: int) -> list[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


def find_litellm(flag: str | None) -> str | None:
    for candidate in (flag, os.environ.get("FISCUS_BENCH_LITELLM")):
        if candidate:
            if not Path(candidate).exists():
                raise SystemExit(f"LiteLLM binary not found at {candidate}")
            return candidate
    return shutil.which("litellm")


LITELLM_KEY = "sk-litellm-bench-" + os.urandom(8).hex()


def start_litellm(binary: str, emulator: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = workdir / "litellm.yaml"
    # A master key (it refuses to start without one; fiscus checks a key too) but no database, callbacks,
    # spend logs or telemetry: LiteLLM's lightest proxy configuration.
    config.write_text(
        "model_list:\n  - model_name: gpt-4o-mini\n    litellm_params:\n      model: openai/gpt-4o-mini\n"
        f"      api_base: {emulator}/v1\n      api_key: sk-emulator\n"
        "litellm_settings:\n  telemetry: false\n  set_verbose: false\n  drop_params: true\n"
        f"general_settings:\n  master_key: {LITELLM_KEY}\n  disable_spend_logs: true\n"
        "  disable_error_logs: true\n  background_health_checks: false\n"
    )
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the price map from GitHub at start
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
        "DISABLE_SCHEMA_UPDATE": "True",
    }
    proc = subprocess.Popen(
        [binary, "--config", str(config), "--port", str(port), "--num_workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    wait_up(f"http://127.0.0.1:{port}/health/liveliness", timeout=120, proc=proc)
    return proc, f"http://127.0.0.1:{port}"


def write_config(workdir: Path, emulator: str, store: str) -> Path:
    config, policy = workdir / "fiscus.yaml", workdir / "policy.yaml"
    policy.write_text(
        "version: 1\nbudgets:\n  - name: perf-daily\n    scope: {team: perf}\n    window: day\n"
        "    limit: {usd: 1000000}\n"
    )
    budget_store = f"sqlite:///{workdir}/budgets.db" if store == "sqlite" else "memory://"
    config.write_text(
        f"policy: {policy}\nledger: sqlite:///{workdir}/ledger.db\nbudget_store: {budget_store}\n"
        f"keys: sqlite:///{workdir}/keys.db\nproviders:\n  openai:\n    kind: openai\n"
        f"    base_url: {emulator}/v1\n    api_key_env: BENCH_UPSTREAM_KEY\n    models: ['gpt-4o-mini']\n"
    )
    return config


def summarise(values: list[float]) -> str:
    return f"{min(values):8.2f} ±{max(values) - min(values):<7.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600, help="requests per case and target")
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--repeat", type=int, default=2, help="rounds per case; best and spread are printed")
    parser.add_argument(
        "--store",
        choices=("memory", "sqlite"),
        default="memory",
        help="the gateway's budget store: memory (its default config, one worker) or sqlite (a shared file)",
    )
    parser.add_argument("--long", type=int, default=0, help="then N gateway requests, RSS at start and end")
    parser.add_argument("--litellm-bin", default=None, help="LiteLLM's `litellm` command (a venv of its own)")
    parser.add_argument("--no-stream", action="store_true", help="skip the streamed cases")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="fiscus-bench-"))
    emu_port, gw_port = free_port(), free_port()
    emulator = f"http://127.0.0.1:{emu_port}"
    procs: list[subprocess.Popen[bytes]] = []
    cores = len(os.sched_getaffinity(0))
    print(
        f"{cores} cores shared by 3-4 processes (emulator, gateway, load generator, LiteLLM); "
        f"gateway: uvicorn+uvloop+httptools, 1 worker, {args.store} budget store, SQLite ledger"
    )
    try:
        emulator_code = (
            "import uvicorn; from fiscus.emulator import create_app; "
            f"uvicorn.run(create_app(None), port={emu_port}, log_level='warning', access_log=False, loop='uvloop', "
            "http='httptools')"
        )
        procs.append(subprocess.Popen([PY, "-c", emulator_code]))
        wait_up(f"{emulator}/v1/models")
        config = write_config(workdir, emulator, args.store)
        from fiscus.keys import KeyRing, open_key_store

        key, _ = KeyRing(open_key_store(f"sqlite:///{workdir}/keys.db")).create(
            agent="bench", team="perf", environment="bench"
        )
        env = {**os.environ, "BENCH_UPSTREAM_KEY": "sk-emulator"}
        command = [PY, "-m", "fiscus.cli.main", "serve", "-c", str(config), "--port", str(gw_port), "--workers", "1"]
        serve = subprocess.Popen(command, env=env)
        procs.append(serve)
        gateway = f"http://127.0.0.1:{gw_port}"
        wait_up(f"{gateway}/healthz")
        pid = gateway_pid(serve.pid)
        rss_start = rss_mb(pid)
        binary = find_litellm(args.litellm_bin)
        litellm = None
        if binary is None:
            print("LiteLLM not installed: skipped (pass --litellm-bin or set FISCUS_BENCH_LITELLM)")
        else:
            litellm = start_litellm(binary, emulator, workdir)
            procs.append(litellm[0])
        print(f"gateway RSS at start: {rss_start:.1f} MB; {args.repeat} rounds per case, best ±spread")
        upstream_auth = {"authorization": "Bearer sk-emulator"}
        gateway_auth = {"authorization": f"Bearer {key}"}
        litellm_auth = {"authorization": f"Bearer {LITELLM_KEY}"}
        print("added ms and CPU µs/request (the proxy's own, all threads): best of the rounds ±spread")
        columns = f"{'direct p50/p99 ms':>18}{'+p50 ms':>17}{'+p99 ms':>17}{'RPS ratio':>14}{'CPU µs':>9}"
        print(f"{'case':<12}{'proxy':<9}{columns}")
        for stream in (False,) if args.no_stream else (False, True):
            for level in levels:
                total = max(args.requests, level * 10)
                rows: dict[str, list[Run]] = {"direct": [], "fiscus": [], "litellm": []}
                for _ in range(args.repeat):
                    chat = "/v1/chat/completions"
                    with paused(litellm[0] if litellm else None):
                        rows["direct"].append(measure(emulator + chat, upstream_auth, stream, level, total))
                        rows["fiscus"].append(measure_proxy(gateway + chat, gateway_auth, stream, level, total, pid))
                    if litellm:
                        with paused(serve):
                            lite = measure_proxy(litellm[1] + chat, litellm_auth, stream, level, total, litellm[0].pid)
                            rows["litellm"].append(lite)
                direct = rows["direct"]
                best = min(direct, key=lambda r: r.p50)
                case = ("stream" if stream else "json") + f" c={level}"
                for name in ("fiscus", "litellm") if litellm else ("fiscus",):
                    runs = rows[name]
                    added50 = [r.p50 - d.p50 for r, d in zip(runs, direct, strict=True)]
                    added99 = [r.p99 - d.p99 for r, d in zip(runs, direct, strict=True)]
                    ratio = [r.rps / d.rps for r, d in zip(runs, direct, strict=True)]
                    print(
                        f"{case:<12}{name:<9}{best.p50:>9.2f}/{best.p99:<8.2f}{summarise(added50):>17}"
                        f"{summarise(added99):>17}{max(ratio):>8.2f} ±{max(ratio) - min(ratio):<4.2f}"
                        f"{min(r.cpu_us for r in runs):>9.0f}",
                        flush=True,
                    )
                if litellm:
                    fiscus_rps = max(r.rps for r in rows["fiscus"])
                    litellm_rps = max(r.rps for r in rows["litellm"])
                    cpu = min(r.cpu_us for r in rows["litellm"]) / min(r.cpu_us for r in rows["fiscus"])
                    print(
                        f"{case:<12}fiscus/litellm: {fiscus_rps / litellm_rps:.1f}x the throughput "
                        f"({fiscus_rps:.0f} vs {litellm_rps:.0f} req/s), {cpu:.1f}x less CPU per request",
                        flush=True,
                    )
        if args.long:
            # In quarters, so growth that continues (a leak) can be told from a warm-up that levels off.
            marks, runs = [f"{rss_start:.1f}", f"{rss_mb(pid):.1f}"], []
            for _ in range(4):
                runs.append(measure(f"{gateway}/v1/chat/completions", gateway_auth, False, 16, args.long // 4))
                marks.append(f"{rss_mb(pid):.1f}")
            print(
                f"long run: {args.long // 4 * 4} JSON requests at c=16, {min(r.rps for r in runs):.0f}-"
                f"{max(r.rps for r in runs):.0f} req/s; gateway RSS MB at start, before the long run and after each "
                f"quarter: {' -> '.join(marks)}"
            )
        else:
            print(f"gateway RSS at end: {rss_mb(pid):.1f} MB")
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
