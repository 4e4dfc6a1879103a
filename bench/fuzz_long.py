"""The fuzz suite (tests/fuzz) at length: thousands of hostile requests per property against the real gateway
instead of the few dozen CI sends. The same assertions hold: no 5xx, no traceback in the logs, provider-format
errors, nothing left reserved. Prints each property's outcome and the time it took.

    .venv/bin/python bench/fuzz_long.py [--examples 3000] [-- extra pytest arguments]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=3000, help="examples per property (CI runs 40)")
    parser.add_argument("pytest_args", nargs="*", help="more arguments for pytest, after --")
    args = parser.parse_args()
    env = {**os.environ, "FISCUS_FUZZ_EXAMPLES": str(args.examples)}
    command = [sys.executable, "-m", "pytest", "tests/fuzz", "-p", "no:cacheprovider", "-q", "-rA", "--durations=0"]
    started = time.perf_counter()
    result = subprocess.run([*command, *args.pytest_args], cwd=ROOT, env=env, check=False)
    elapsed = time.perf_counter() - started
    print(f"fuzz_long: {args.examples} examples per property, {elapsed:.0f} s, exit {result.returncode}")
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
