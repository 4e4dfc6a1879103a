"""Cost of the loop checks per call on a research agent whose inputs are 2k words of new findings a step.

Three shapes of one call, each measured without and with the sketch cache (`fiscus.guards.similarity.SKETCHES`:
turns already seen are not sketched again), in the same run:
- one detector (an SDK session);
- the gateway's pair: the call's conversation and its key's exchange between agents;
- a subagent three levels deep: every detector of its session chain reads the same turn.
Plus the baseline: every check off (novelty is still judged, so the turn is still sketched once).

Then the gateway's pair with its state local (one worker) vs shared through a store (memory, SQLite, Redis when
one answers at --redis): one worker serving every call (its copy stays current: one swap per detector), and
four workers taking turns (each call finds its copy stale: the swap answers the newer record, the call reruns).

Then this code against the sketch before it (6d6c88e, read from git), in turns, CPU time: a new 2,000-word turn
and whole calls. On a 2-core machine shared with other test runs (load 8-11), `--calls 200`: sketching a new turn
826 → 580 µs (1.43x, 5,000-word vocabulary) and 584 → 383 µs (1.52x, every word a new id), one detector's call
3,508 → 2,257 µs (1.55x), the gateway pair's 4,198 → 3,030 µs (1.39x); the sketches are the same hashes. The wall
clock rows above move by 30 % or more from run to run on such a machine.

    python bench/loops.py [--calls N] [--redis URL]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
import types
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from fiscus.errors import StoreError
from fiscus.guards import loops
from fiscus.guards.loop_state import Conversation, LoopStates, LoopStateStore, MemoryLoopState, open_loop_state
from fiscus.guards.loops import LoopConfig, LoopDetector
from fiscus.guards.similarity import SKETCHES, sketch

BEFORE = "6d6c88e"  # the sketch before shingles were hashed by mapped CRCs (and compared by one intersection)

_VOCAB = [f"w{i}" for i in range(5_000)]


def _run(
    config: LoopConfig,
    steps: list[tuple[str, str]],
    *,
    detectors: int = 1,
    exchange: bool = False,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    chain = [LoopDetector(config) for _ in range(detectors)]
    pair = LoopDetector(config)
    SKETCHES.clear()
    start = clock()
    for content, output in steps:
        for detector in chain:
            detector.before_call(agent="researcher", content=content, tool_results=(content,))
        if exchange:
            pair.exchanged("researcher", content)
        for detector in chain:
            detector.after_call(tool_calls=[("search", {"q": content[:20]})], output=output, tokens=20_000)
    return (clock() - start) / len(steps) * 1e6


def _with_and_without_cache(config: LoopConfig, steps: list[tuple[str, str]], **shape: object) -> tuple[float, float]:
    size = SKETCHES.size
    SKETCHES.size = 0
    try:
        before = _run(config, steps, **shape)  # type: ignore[arg-type]
    finally:
        SKETCHES.size = size
    return before, _run(config, steps, **shape)  # type: ignore[arg-type]


def _run_shared(config: LoopConfig, steps: list[tuple[str, str]], stores: list[LoopStateStore | None]) -> float:
    """The gateway's pair (conversation + exchange) per call, each call served by the next of `stores`' workers."""
    workers = [LoopStates(config, store) for store in stores]
    tag = uuid.uuid4().hex  # a new conversation per run
    SKETCHES.clear()
    start = time.perf_counter()
    for i, (content, output) in enumerate(steps):

        def step(held: list[Conversation], content: str = content, output: str = output) -> object:
            held[0].detector.after_call(tool_calls=[("search", {"q": content[:20]})], output=output, tokens=20_000)
            found = held[0].detector.before_call(agent="researcher", content=content, tool_results=(content,))
            return found or held[1].detector.exchanged("researcher", content)

        workers[i % len(workers)].run_all([f"s:{tag}", f"x:{tag}"], step)  # as the gateway: one swap for both
    return (time.perf_counter() - start) / len(steps) * 1e6


def _shared_rows(config: LoopConfig, steps: list[tuple[str, str]], redis: str) -> None:
    local = min(_run_shared(config, steps, [None]) for _ in range(2))  # the first run also warms up
    print(f"gateway pair, state local (baseline): {local:8.1f} µs/call")
    with tempfile.TemporaryDirectory() as tmp:
        prefix = f"bench-loops-{uuid.uuid4().hex[:8]}"
        urls = {"memory": "memory://", "sqlite": f"sqlite:///{Path(tmp) / 'breakers.db'}"}
        urls["redis"] = f"{redis}?prefix={prefix}"
        for name, url in urls.items():
            try:
                opened = [MemoryLoopState()] * 4 if name == "memory" else [open_loop_state(url) for _ in range(4)]
                one = min(_run_shared(config, steps, opened[:1]) for _ in range(2))
                four = min(_run_shared(config, steps, list(opened)) for _ in range(2))
            except StoreError as exc:
                print(f"shared on {name}: skipped ({exc})")
                continue
            finally:
                if name == "redis":
                    _forget(redis, prefix)
            for store in set(opened):
                store.close()
            print(
                f"shared on {name:<7} 1 worker {one:8.1f} µs/call ({one / local:.2f}x local), "
                f"4 workers in turn {four:8.1f} µs/call ({four / local:.2f}x)"
            )


def _forget(url: str, prefix: str) -> None:
    import redis

    try:
        client = redis.Redis.from_url(url)
        keys = list(client.scan_iter(match=f"*{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()
    except redis.RedisError:
        pass


def _code_before(commit: str) -> types.ModuleType | None:
    """`fiscus.guards.similarity` as it was at `commit`, read from git (None outside a checkout)."""
    try:
        source = subprocess.run(
            ["git", "show", f"{commit}:src/fiscus/guards/similarity.py"],
            capture_output=True,
            check=True,
            text=True,
            cwd=Path(__file__).parent,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = sys.modules["similarity_before"] = types.ModuleType("similarity_before")  # dataclasses look it up
    exec(compile(source, f"{commit}:similarity.py", "exec"), module.__dict__)
    return module


def _per_sketch(make: Callable[[str], object], texts: list[str]) -> float:
    start = time.process_time()
    for text in texts:
        make(text)
    return (time.process_time() - start) / len(texts) * 1e6


@contextmanager
def _loops_on(module: types.ModuleType | None) -> Iterator[None]:
    """The loop detectors sketching and comparing with `module`'s functions (None: this code's)."""
    if module is None:
        yield
        return
    names = ("Sketch", "cached_sketch", "estimate")
    kept = {name: getattr(loops, name) for name in names}
    try:
        for name in names:
            setattr(loops, name, getattr(module, name))
        yield
    finally:
        for name, value in kept.items():
            setattr(loops, name, value)


def _sketch_rows(config: LoopConfig, steps: list[tuple[str, str]], rounds: int) -> None:
    """This code against `BEFORE`'s in the same run, in turns (B A B A …, best of each side, CPU time of this
    process, which a machine shared with other work disturbs less than the wall clock): sketching a new
    2,000-word turn (no cache) of short words from a 5,000-word vocabulary, and of long words never seen (ids),
    then whole calls as the rows above make them. The sketches are the same on both sides."""
    before = _code_before(BEFORE)
    if before is None:
        print(f"against {BEFORE}: skipped (no git history to read it from)")
        return
    known = [content for content, _ in steps]
    _per_sketch(before.sketch, known)  # warm up both
    _per_sketch(sketch, known)
    batch = max(len(known) // rounds, 1)
    b = a = float("inf")
    for r in range(rounds):
        chunk = known[r * batch : (r + 1) * batch] or known
        b, a = min(b, _per_sketch(before.sketch, chunk)), min(a, _per_sketch(sketch, chunk))
    rows = [("sketch of a new turn, vocabulary words", b, a)]
    b = a = float("inf")
    for r in range(rounds):  # every word unique to its turn
        fresh = [" ".join(f"t{r}x{i}x{j}" for j in range(2_000)) for i in range(max(batch // 4, 2))]
        b, a = min(b, _per_sketch(before.sketch, fresh)), min(a, _per_sketch(sketch, fresh))
    rows.append(("sketch of a new turn, new ids", b, a))
    for label, shape in (("call, one detector", {}), ("call, gateway pair", {"exchange": True})):
        b = a = float("inf")
        for _ in range(max(rounds // 2, 1)):
            with _loops_on(before):
                before.SKETCHES.clear()
                b = min(b, _run(config, steps, clock=time.process_time, **shape))  # type: ignore[arg-type]
            a = min(a, _run(config, steps, clock=time.process_time, **shape))  # type: ignore[arg-type]
        rows.append((label, b, a))
    for label, b, a in rows:
        print(f"{label:<38} {BEFORE} {b:8.1f} µs, now {a:8.1f} µs ({b / a:.2f}x as fast)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="a Redis for the shared rows")
    args = parser.parse_args()
    rng = random.Random(7)
    steps = [
        (" ".join(rng.choice(_VOCAB) for _ in range(2_000)), " ".join(rng.choice(_VOCAB) for _ in range(200)))
        for _ in range(args.calls)
    ]
    off = LoopConfig(
        repeat_tool_calls=None, near_duplicate_run=None, ping_pong_rounds=None, no_progress_steps=None, action="warn"
    )
    defaults = LoopConfig(action="warn")
    baseline = _run(off, steps)
    print(f"loop checks off (baseline):            {baseline:8.1f} µs/call")
    for label, shape in (
        ("one detector (SDK session)", {}),
        ("gateway: conversation + exchange", {"exchange": True}),
        ("subagent 3 deep: 3 detectors", {"detectors": 3}),
    ):
        before, after = _with_and_without_cache(defaults, steps, **shape)
        print(
            f"{label:<34} before {before:8.1f} µs/call ({before / baseline:.1f}x the baseline), "
            f"after {after:8.1f} µs/call ({after / baseline:.1f}x); cache saves {1 - after / before:.0%}"
        )
    _sketch_rows(defaults, steps[:100], rounds=6)
    _shared_rows(defaults, steps, args.redis)


if __name__ == "__main__":
    main()
