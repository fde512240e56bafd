"""What the default recipe costs over ``paper``, as a user pays it: the whole ``train`` command, side by side.

Runs the README's main job (``hsi-classify train --dataset salinas_a --split disjoint --train-ratio 0.1
--patch-size 11 --pca-components 15 --epochs 20``, the README's first command since 2026-12-06; issue 29
measured the earlier one, ``--split random`` with 25x25 patches and 30 components: ``--split random
--patch-size 25 --pca-components 30``) with ``--recipe paper``
and with the default recipe, and optionally the seed notebook's pipeline (``--peer``,
``../shared/peers/seed_hybridsn.py``: train and classify every pixel, its own 25x25 patches and 30
components), alternating them
(paper, default, peer, paper, ...) ``--rounds`` times so that all see the same load. Each run
is a process of its own, measured from outside: wall seconds, CPU seconds (user + system),
peak memory (max RSS) and the bytes it wrote (``wchar`` of ``/proc/self/io``: run folder,
resume points, everything). Prints one JSON object: every run, the medians per setup, the
ratios default / paper, and notebook / default and notebook / paper. Each run's folder (with
its config.json) lands in ``--out``.

    HSI_DATA_DIR=../shared/data python scripts/recipe_cost.py --out /tmp/cost --rounds 3 \\
        --peer ../shared/peers/seed_hybridsn.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hsi.config import RunConfig

#: Runs the command line after it in this interpreter and, at exit, writes the process's I/O
#: counters (``/proc/self/io``), CPU seconds and peak RSS to the file named by ``$HSI_COST_IO``.
_IO_WRAPPER = """
import atexit, os, resource, runpy, sys
def _dump():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open(os.environ["HSI_COST_IO"], "w") as out:
        out.write(f"cpu: {usage.ru_utime + usage.ru_stime}\\nmaxrss_kb: {usage.ru_maxrss}\\n")
        try:
            with open("/proc/self/io") as fh:
                out.write(fh.read())
        except OSError:
            pass
atexit.register(_dump)
sys.argv = sys.argv[1:]
if sys.argv[0] == "-m":
    sys.argv = sys.argv[1:]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
else:
    runpy.run_path(sys.argv[0], run_name="__main__")
"""


def measure(argv: list[str], *, threads: int | None = None) -> dict[str, Any]:
    """Runs ``python argv...`` in a process of its own; its wall, CPU seconds, peak RSS, bytes written, JSON line."""
    with tempfile.NamedTemporaryFile("r", suffix=".io") as io_file:
        env = {**os.environ, "HSI_COST_IO": io_file.name}
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        load = os.getloadavg()[0]
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _IO_WRAPPER, *argv], env=env, capture_output=True, text=True,
                              check=False)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
        counters = dict(line.split(": ") for line in Path(io_file.name).read_text().splitlines() if ": " in line)
    last_json = next((line for line in reversed(done.stdout.splitlines()) if line.startswith("{")), "{}")
    return {"wall_seconds": wall, "cpu_seconds": float(counters["cpu"]),
            "peak_rss_mb": int(counters["maxrss_kb"]) / 1024, "bytes_written": int(counters.get("wchar", 0)),
            "load_average_1min_before": load, "output": json.loads(last_json)}


def train_argv(config: RunConfig, out: Path) -> list[str]:
    """The ``hsi-classify train`` command line of ``config`` (its main-job settings), writing into ``out``."""
    return ["-m", "hsi", "train", "--dataset", str(config.dataset), "--split", config.split,
            "--train-ratio", str(config.train_ratio), "--epochs", str(config.epochs),
            "--patch-size", str(config.patch_size), "--pca-components", str(config.pca_components),
            "--recipe", config.recipe, "--seed", str(config.seed), "--device", config.device,
            "--out", str(out), "--json", "--quiet",
            *(["--data-dir", str(config.data_dir)] if config.data_dir else []),
            *(["--ensemble", str(config.ensemble)] if config.ensemble else [])]


def one_run(config: RunConfig, out: Path, *, threads: int | None = None) -> dict[str, Any]:
    """The whole train command of ``config``: cost (see :func:`measure`), training seconds, networks, OA."""
    run = measure(train_argv(config, out), threads=threads)
    (run_dir,) = out.iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    networks = metrics.get("ensemble", {}).get("networks", [{"epochs": config.epochs}])
    del run["output"]
    return {"setup": config.recipe, **run, "train_seconds": metrics["train_seconds"],
            "inference_seconds": metrics["inference_seconds"], "networks": len(networks),
            "network_epochs": sum(n["epochs"] for n in networks), "train_input": metrics.get("train_input"),
            "train_precision": metrics.get("train_precision"),
            "overall_accuracy": metrics["overall_accuracy"]}


def peer_run(peer: Path, data_dir: Path, epochs: int, train_ratio: float, *, threads: int | None = None
             ) -> dict[str, Any]:
    """The seed notebook's pipeline on real Salinas-A: train ``epochs`` and classify every pixel."""
    scene = data_dir / "salinas_a"
    run = measure([str(peer), "--cube", str(scene / "SalinasA_corrected.mat"), "--gt", str(scene / "SalinasA_gt.mat"),
                   "--epochs", str(epochs), "--test-ratio", str(1 - train_ratio), "--full-scene"], threads=threads)
    output = run.pop("output")
    return {"setup": "notebook", **run, "train_seconds": output.get("train_s"),
            "overall_accuracy": output["OA"] / 100 if "OA" in output else None}


_KEYS = ("wall_seconds", "cpu_seconds", "peak_rss_mb", "bytes_written", "train_seconds", "network_epochs",
         "overall_accuracy")


def main(argv: list[str] | None = None) -> int:
    default = RunConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the run folders")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each setup, alternating")
    parser.add_argument("--recipe", default=default.recipe, help="the recipe set against paper (default: the default)")
    parser.add_argument("--data-dir", default=os.environ.get("HSI_DATA_DIR"), help="default $HSI_DATA_DIR")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--split", default="disjoint", help="the main job's split (default disjoint)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--train-ratio", type=float, default=0.1)
    parser.add_argument("--patch-size", type=int, default=11, help="the README's main job: 11")
    parser.add_argument("--pca-components", type=int, default=15, help="the README's main job: 15")
    parser.add_argument("--ensemble", type=int, help="networks of the recipe's runs (default: the recipe's)")
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS of every run (default: inherited)")
    parser.add_argument("--peer", type=Path, help="the seed notebook's pipeline (../shared/peers/seed_hybridsn.py)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1; got {args.rounds}")
    if args.recipe == "paper":
        parser.error("--recipe must differ from paper (it is set against paper)")

    out = Path(args.out)
    base = {**default.to_dict(), "dataset": "salinas_a", "data_dir": args.data_dir, "device": args.device,
            "split": args.split, "epochs": args.epochs, "train_ratio": args.train_ratio,
            "patch_size": args.patch_size, "pca_components": args.pca_components, "seed": 0}
    setups = ["paper", args.recipe] + (["notebook"] if args.peer else [])
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in setups}
    for k in range(args.rounds):
        for setup in setups:
            if setup == "notebook":
                data_dir = Path(args.data_dir or Path(__file__).resolve().parents[2] / "shared" / "data")
                runs[setup].append(peer_run(args.peer, data_dir, args.epochs, args.train_ratio, threads=args.threads))
                continue
            ensemble = args.ensemble if setup == args.recipe else None
            config = RunConfig.from_dict({**base, "recipe": setup, "ensemble": ensemble})
            runs[setup].append(one_run(config, out / f"{setup}-{k}", threads=args.threads))
    medians = {s: {key: statistics.median(r[key] for r in runs[s]) for key in _KEYS if key in runs[s][0]}
               for s in setups}
    ratio_keys = ("wall_seconds", "cpu_seconds", "train_seconds", "bytes_written", "peak_rss_mb")
    ratios = {f"{args.recipe}_over_paper": {k: medians[args.recipe][k] / medians["paper"][k] for k in ratio_keys}}
    if args.peer:
        for setup in ("paper", args.recipe):
            ratios[f"notebook_over_{setup}"] = {"wall_seconds": medians["notebook"]["wall_seconds"]
                                                / medians[setup]["wall_seconds"]}
    print(json.dumps({"settings": {**{k: base[k] for k in ("split", "epochs", "train_ratio", "patch_size",
                                                           "pca_components", "device")},
                                   "ensemble": args.ensemble, "threads": args.threads},
                      "cpu_count": os.cpu_count(), "median": medians, "ratios": ratios, "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
