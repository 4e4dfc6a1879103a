"""Cost of the loop checks per call: µs per `before_call` + `after_call` pair on a research agent whose
inputs are 2k words of new findings a step, vs the same pair with every check off (the baseline, same run).

    python bench/loops.py [--calls N]
"""

from __future__ import annotations

import argparse
import random
import time

from fiscus.guards.loops import LoopConfig, LoopDetector

_VOCAB = [f"w{i}" for i in range(5_000)]


def _run(config: LoopConfig, steps: list[tuple[str, str]]) -> float:
    detector = LoopDetector(config)
    start = time.perf_counter()
    for content, output in steps:
        detector.before_call(agent="researcher", content=content, tool_results=(content,))
        detector.after_call(tool_calls=[("search", {"q": content[:20]})], output=output, tokens=20_000)
    return (time.perf_counter() - start) / len(steps) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2_000)
    args = parser.parse_args()
    rng = random.Random(7)
    steps = [
        (" ".join(rng.choice(_VOCAB) for _ in range(2_000)), " ".join(rng.choice(_VOCAB) for _ in range(200)))
        for _ in range(args.calls)
    ]
    off = LoopConfig(
        repeat_tool_calls=None, near_duplicate_run=None, ping_pong_rounds=None, no_progress_steps=None, action="warn"
    )
    baseline = _run(off, steps)
    checked = _run(LoopConfig(action="warn"), steps)
    print(f"loop checks off:      {baseline:8.1f} µs/call")
    print(f"loop checks defaults: {checked:8.1f} µs/call  ({checked / baseline:.1f}x the baseline)")


if __name__ == "__main__":
    main()
