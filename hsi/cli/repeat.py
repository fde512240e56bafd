"""`hsi-classify repeat`: train one setup several times and report how much the metrics move."""

from __future__ import annotations

import argparse
import json
import sys

from hsi.cli.train import add_data_arguments, add_run_arguments, config_from_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "repeat", help="train the same setup N times; report the spread of OA/AA/kappa and where it comes from",
        description="Train the same setup several times with different seeds, in one repeat folder "
        "<out>/<name>/ (one train run folder per run), and write stability.json/.md/.png, agreement.png/.npy "
        "and consensus.png. Run k uses seed --seed + k (or the k-th of --seeds). Running the same command "
        "again trains only the runs that did not finish.",
    )
    add_data_arguments(parser)
    add_run_arguments(parser)
    group = parser.add_argument_group("repeat")
    group.add_argument("--runs", type=int, help="number of runs (not needed with --seeds)")
    group.add_argument("--seeds", help="comma-separated seed of each run, e.g. 0,1,2 (default: --seed + k)")
    group.add_argument("--vary", choices=("split", "init", "both"), default="both",
                       help="split: new train/test split, same initialisation; init: same split, new weights, "
                       "dropout and batch order; both: everything (default)")
    group.add_argument("--name", help="repeat folder name inside --out (default <dataset>_<model>_vary-<vary>)")
    group.add_argument("--jobs", type=int,
                       help="runs trained at once: default one per visible GPU, 1 on CPU "
                       "(more on CPU is allowed, but the runs share the cores)")
    parser.set_defaults(func=run, download=None)


def run(args: argparse.Namespace) -> int:
    from hsi.experiments.repeat import parse_seeds, repeat_runs

    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    result = repeat_runs(
        config_from_args(args), runs=args.runs, seeds=seeds, vary=args.vary, name=args.name, jobs=args.jobs,
        progress=not args.quiet, notify=lambda line: print(line, file=sys.stderr),
    )
    r = result.report

    def mean_std(key: str) -> dict[str, float | None]:
        s = r[key]
        return {k: None if s[k] is None else round(s[k], 4) for k in ("mean", "std")}

    print(json.dumps({
        "repeat_dir": str(result.repeat_dir), "runs": r["n_runs"], "trained_now": result.n_trained,
        "reused": result.n_reused, "overall_accuracy": mean_std("overall_accuracy"),
        "average_accuracy": mean_std("average_accuracy"), "kappa": mean_std("kappa"),
    }))
    return 0
