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

    python bench/loops.py [--calls N] [--redis URL]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from pathlib import Path

from fiscus.errors import StoreError
from fiscus.guards.loop_state import Conversation, LoopStates, LoopStateStore, MemoryLoopState, open_loop_state
from fiscus.guards.loops import LoopConfig, LoopDetector
from fiscus.guards.similarity import SKETCHES

_VOCAB = [f"w{i}" for i in range(5_000)]


def _run(config: LoopConfig, steps: list[tuple[str, str]], *, detectors: int = 1, exchange: bool = False) -> float:
    chain = [LoopDetector(config) for _ in range(detectors)]
    pair = LoopDetector(config)
    SKETCHES.clear()
    start = time.perf_counter()
    for content, output in steps:
        for detector in chain:
            detector.before_call(agent="researcher", content=content, tool_results=(content,))
        if exchange:
            pair.exchanged("researcher", content)
        for detector in chain:
            detector.after_call(tool_calls=[("search", {"q": content[:20]})], output=output, tokens=20_000)
    return (time.perf_counter() - start) / len(steps) * 1e6


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
    _shared_rows(defaults, steps, args.redis)


if __name__ == "__main__":
    main()
