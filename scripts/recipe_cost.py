"""What the default recipe costs over ``paper``: training seconds per network, and TTA/ensembles apart.

Trains ``paper`` and the default recipe on real Salinas-A, alternating (paper, default,
paper, ...) so that both see the same load, ``--rounds`` times each, at the main job's
settings unless told otherwise, and prints one JSON object: per recipe the median of the
whole run's training seconds, of the seconds per network (the run's training seconds over
its ensemble size: the issue's "at most 2x ``paper`` at the same epochs, ensembles excluded"),
of the inference seconds (TTA and the ensemble's other networks included) and the OA; then
the ratios default / paper. Each run also lands in ``--out`` with its config.json.

    HSI_DATA_DIR=../shared/data python scripts/recipe_cost.py --out /tmp/cost --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hsi.config import RunConfig  # noqa: E402


def one_run(config: RunConfig, name: str) -> dict[str, Any]:
    """Trains ``config`` and returns its cost figures (seconds) and OA (fraction)."""
    from hsi.experiments.train import train_run

    load = os.getloadavg()[0]
    metrics = train_run(config, progress=False, run_name=name).metrics
    networks = 1 + len(metrics.get("ensemble_members", []))
    return {"recipe": config.recipe, "train_seconds": metrics["train_seconds"],
            "seconds_per_network": metrics["train_seconds"] / networks, "networks": networks,
            "inference_seconds": metrics["inference_seconds"], "train_input": metrics.get("train_input"),
            "overall_accuracy": metrics["overall_accuracy"], "load_average_1min_before": load}


def main(argv: list[str] | None = None) -> int:
    default = RunConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the run folders")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each recipe, alternating")
    parser.add_argument("--recipe", default=default.recipe, help="the recipe set against paper (default: the default)")
    parser.add_argument("--data-dir", default=os.environ.get("HSI_DATA_DIR"), help="default $HSI_DATA_DIR")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--train-ratio", type=float, default=0.1)
    parser.add_argument("--patch-size", type=int, default=default.patch_size)
    parser.add_argument("--pca-components", type=int, default=default.pca_components)
    parser.add_argument("--ensemble", type=int,
                        help="networks of the recipe's runs (default: the recipe's); the per-network figure "
                        "is the same with fewer, and they cost less time")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1; got {args.rounds}")
    if args.recipe == "paper":
        parser.error("--recipe must differ from paper (it is set against paper)")

    base = {**default.to_dict(), "dataset": "salinas_a", "data_dir": args.data_dir, "download": False,
            "device": args.device, "out": args.out, "epochs": args.epochs, "train_ratio": args.train_ratio,
            "patch_size": args.patch_size, "pca_components": args.pca_components, "seed": 0}
    recipes = ("paper", args.recipe)
    runs: dict[str, list[dict[str, Any]]] = {r: [] for r in recipes}
    for k in range(args.rounds):
        for recipe in recipes:
            ensemble = args.ensemble if recipe == args.recipe else None
            runs[recipe].append(one_run(RunConfig.from_dict({**base, "recipe": recipe, "ensemble": ensemble}),
                                        f"{recipe}-{k}"))
    medians = {r: {key: statistics.median(run[key] for run in runs[r])
                   for key in ("train_seconds", "seconds_per_network", "inference_seconds", "overall_accuracy")}
               for r in recipes}
    ratios = {key: medians[args.recipe][key] / medians["paper"][key]
              for key in ("train_seconds", "seconds_per_network", "inference_seconds")}
    print(json.dumps({"settings": {**{k: base[k] for k in ("epochs", "train_ratio", "patch_size", "pca_components",
                                                           "device")}, "ensemble": args.ensemble},
                      "cpu_count": os.cpu_count(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                      "median": medians, "ratio_over_paper": ratios, "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
