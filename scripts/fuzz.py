#!/usr/bin/env python
"""A longer fuzzing run of every reader of files from someone else (tests/security/test_fuzz_readers.py).

Developer script (never imported by ``hsi``). Runs the same properties as the default suite,
with ``--count`` random cases per format instead of the suite's 50 fixed ones, and prints
the outcome: cases run, and each failure hypothesis found (with the case to reproduce it).
Record the outcome of a release's run in docs/security.md.

The fuzz tests are the byte-level mutators of every format (MATLAB v5, v7.3, ENVI, .npy, a
run's model.json + model.safetensors, a legacy model.pt) and the structure-aware mutators of a
run's model (model.json's fields, sizes, nesting, ids and tensors; the estimator inside a skops
payload: tree arrays, SVC counts, the scaler), which load and predict each case.

Usage::

    python scripts/fuzz.py --count 2000                  # new random cases, every fuzz test
    python scripts/fuzz.py --count 2000 --seed 7         # the same cases again
    python scripts/fuzz.py --count 5000 -- -k structure  # the structure-aware mutators only
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_FILE = "tests/security/test_fuzz_readers.py"
_COUNTS = re.compile(r"(\d+) passing, (\d+) failing, and (\d+) invalid")


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
    passing = failing = invalid = tests = 0
    generating = False
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as run:
        assert run.stdout is not None
        for line in run.stdout:  # shown as it comes, and counted: hypothesis states the cases each test ran
            print(line, end="", flush=True)
            if "during generate phase" in line:
                generating = True
            elif generating and (match := _COUNTS.search(line)):
                generating = False
                tests += 1
                passing, failing, invalid = (a + int(b) for a, b in zip((passing, failing, invalid), match.groups(),
                                                                         strict=True))
    code = run.returncode
    seconds = time.perf_counter() - started
    outcome = "no failure" if code == 0 else f"FAILURES (pytest exit code {code}; see above)"
    cases = passing + failing
    print(f"fuzz: {cases} cases ({failing} failing; {invalid} draws discarded as invalid) in {tests} fuzz tests of "
          f"{args.count} each, {seconds:.0f} s ({cases / max(seconds, 1e-9):.1f} cases/s), seed "
          f"{args.seed if args.seed is not None else 'random'}: {outcome}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
