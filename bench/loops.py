"""Cost of the loop checks per call on a research agent whose inputs are 2k words of new findings a step.

Three shapes of one call, each measured without and with the sketch cache (`fiscus.guards.similarity.SKETCHES`:
turns already seen are not sketched again), in the same run:
- one detector (an SDK session);
- the gateway's pair: the call's conversation and its key's exchange between agents;
- a subagent three levels deep: every detector of its session chain reads the same turn.
Plus the baseline: every check off (novelty is still judged, so the turn is still sketched once).

    python bench/loops.py [--calls N]
"""

from __future__ import annotations

import argparse
import random
import time

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
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


if __name__ == "__main__":
    main()
