#!/usr/bin/env python
"""A longer fuzzing run of every reader of files from someone else (tests/security/test_fuzz_readers.py).

Developer script (never imported by ``hsi``). Runs the same properties as the default suite,
with ``--count`` random cases per format instead of the suite's 50 fixed ones, and prints
the outcome: cases run, and each failure hypothesis found (with the case to reproduce it).
Record the outcome of a release's run in docs/security.md.

Usage::

    python scripts/fuzz.py --count 2000              # new random cases
    python scripts/fuzz.py --count 2000 --seed 7     # the same cases again
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_FILE = "tests/security/test_fuzz_readers.py"
FUZZ_TESTS = 6  # the @given tests of TEST_FILE: MATLAB v5, v7.3, ENVI, .npy, model.json/safetensors, model.pt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="random cases per format (default 1000)")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed, to repeat a run")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments, e.g. -k npy")
    args = parser.parse_args(argv)
    env = {**os.environ, "HSI_FUZZ_COUNT": str(args.count),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "pytest", TEST_FILE, "-q", "-p", "no:cacheprovider", "--tb=short",
               "--hypothesis-show-statistics", *([f"--hypothesis-seed={args.seed}"] if args.seed is not None else []),
               *args.pytest_args]
    started = time.perf_counter()
    code = subprocess.call(command, cwd=ROOT, env=env)
    seconds = time.perf_counter() - started
    outcome = "no failure" if code == 0 else f"FAILURES (pytest exit code {code}; see above)"
    print(f"fuzz: {args.count} cases x {FUZZ_TESTS} formats = {args.count * FUZZ_TESTS} cases in {seconds:.0f} s, "
          f"seed {args.seed if args.seed is not None else 'random'}: {outcome}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
