"""`hsi-classify repeat`: train one setup several times and report how much the metrics move.

Also the one meaning of ``--runs N`` (a count: seeds ``--seed`` .. ``--seed + N - 1``) and
``--seeds 0,4,7`` (the list itself), shared with ``compare``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hsi import api
from hsi._core.errors import ConfigError
from hsi.cli.output import finish
from hsi.cli.train import SCENE_USAGE, add_data_arguments, add_run_arguments, check_run_inputs, config_from_args
from hsi.experiments.engine import ENGINES
from hsi.reporting.vary import ALL, VARY_CHOICES


def parse_seeds(text: str) -> list[int]:
    """``"0,1,5"`` -> ``[0, 1, 5]``.

    Raises:
        ConfigError: an entry is not an integer, or there is none.
    """
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        seeds = [int(p) for p in parts]
    except ValueError:
        raise ConfigError(f"--seeds must be comma-separated integers such as 0,1,2; got {text!r}.") from None
    if not seeds:
        raise ConfigError(f"--seeds must name at least one seed, e.g. 0,1,2; got {text!r}.")
    return seeds


def add_seed_arguments(group: argparse._ArgumentGroup, *, runs_help: str, default_runs: int | None) -> None:
    """``--runs N`` (a count) and ``--seeds 0,4,7`` (a list), with the same meaning in every command."""
    default = "" if default_runs is None else f" (default {default_runs})"
    group.add_argument("--runs", type=int, metavar="N",
                       help=f"{runs_help}, a count: run k uses seed --seed + k{default}")
    group.add_argument("--seeds", metavar="S,S,...",
                       help="the seed of each run, a comma-separated list such as 0,4,7 (instead of --runs)")


def seeds_from_args(
    args: argparse.Namespace, base_seed: int, *, minimum: int, default_runs: int | None, purpose: str
) -> list[int]:
    """The seed of each run: ``--seeds`` as given, else ``base_seed + k`` for k < ``--runs``.

    Args:
        args: parsed flags with ``runs`` and ``seeds``.
        base_seed: the resolved ``--seed`` (flag, else ``--config`` file, else default).
        minimum: the fewest runs allowed.
        default_runs: the count when neither flag is given; None makes one of them required.
        purpose: what needs the runs, for the message, e.g. "compare".

    Raises:
        ConfigError: fewer than ``minimum`` runs, or ``--runs`` and ``--seeds`` disagree.
    """
    seeds = None if args.seeds is None else parse_seeds(args.seeds)
    if seeds is not None and args.runs is not None and args.runs != len(seeds):
        raise ConfigError(f"--runs {args.runs} disagrees with --seeds, which names {len(seeds)} seeds; "
                          "give one of the two.")
    if seeds is None:
        count = args.runs if args.runs is not None else default_runs or 0
        seeds = [base_seed + k for k in range(max(0, count))]
    if len(seeds) < minimum:
        found = (f"--seeds {args.seeds}" if args.seeds is not None
                 else f"--runs {args.runs}" if args.runs is not None else "neither --runs nor --seeds")
        raise ConfigError(f"{purpose} needs at least {minimum} run{'s' * (minimum > 1)}; found {found}. --seeds "
                          "lists the seed of each run and --runs counts them: use e.g. --runs 3 or --seeds 0,1,2.")
    return seeds


def add_engine_arguments(parser: argparse.ArgumentParser, *, jobs: bool, unit: str = "run",
                         title: str = "where the runs train") -> None:
    """``--engine`` (choices from :data:`~hsi.experiments.engine.ENGINES`) and its settings, shared with ``compare``
    and ``predict``; ``unit`` names what one Ray task does in the help ("run", or "tile" for ``predict``)."""
    group = parser.add_argument_group(f"{title} (see docs/cluster.md)")
    engines = ENGINES if jobs else {**ENGINES, "local": "this machine (default), in this process"}  # no --jobs
    group.add_argument("--engine", choices=tuple(ENGINES), default="local",
                       help="; ".join(f"{name}: {text}" for name, text in engines.items()))
    if jobs:
        group.add_argument("--jobs", type=int,
                           help="local: runs trained at once: default one per visible GPU, 1 on CPU "
                           "(more on CPU is allowed, but the runs share the cores)")
    group.add_argument("--ray-address", metavar="ADDRESS",
                       help="ray: the cluster's head, host:port (default $RAY_ADDRESS, else a Ray instance "
                       "started on this machine for this command)")
    group.add_argument("--gpus-per-run", type=float, metavar="G",
                       help=f"ray: GPUs each {unit} holds; 0.25 lets four {unit}s share a GPU (default 1 when --device "
                       "resolves to CUDA here, else 0)")
    group.add_argument("--cpus-per-run", type=int, metavar="N",
                       help=f"ray: CPUs each {unit} holds, also its torch threads (default 1)")
    group.add_argument("--max-retries", type=int, metavar="N",
                       help=f"ray: times a {unit} is resubmitted after its worker or node died (default 3)")


def engine_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The engine the flags name, as :func:`~hsi.experiments.engine.make_engine`'s keywords (the API builds and
    checks it with the run's device)."""
    jobs = getattr(args, "jobs", 1 if args.engine == "local" else None)  # compare, predict: one at a time locally
    return {"name": args.engine, "jobs": jobs, "ray_address": args.ray_address, "gpus_per_run": args.gpus_per_run,
            "cpus_per_run": args.cpus_per_run, "max_retries": args.max_retries}


def notify(line: str) -> None:
    """An engine's or a repeat's event line (run finished, runs reused), on stderr."""
    print(line, file=sys.stderr)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "repeat", help="train the same setup N times; report the spread of OA/AA/kappa and where it comes from",
        usage=f"%(prog)s {SCENE_USAGE}\n{' ' * 26} (--runs N | --seeds S,S,...) [options]",  # under the scene
        description="Train the same setup several times with different seeds, in one repeat folder "
        "<out>/<name>/ (one train run folder per run), and write stability.json/.md/.png, agreement.png/.npy "
        "and consensus.png. Run k uses seed --seed + k (--runs N) or the k-th of --seeds; at least 2 runs. "
        "Running the same command again trains only the runs that did not finish.",
    )
    add_data_arguments(parser)
    add_run_arguments(parser)
    group = parser.add_argument_group("repeat")
    add_seed_arguments(group, runs_help="number of runs (at least 2)", default_runs=None)
    group.add_argument("--vary", choices=tuple(VARY_CHOICES), default="both",
                       help="; ".join(f"{name}: {text}" for name, text in VARY_CHOICES.items()))
    group.add_argument("--name", help="repeat folder name inside --out (default <dataset>_<model>_vary-<vary>)")
    add_engine_arguments(parser, jobs=True)
    parser.set_defaults(func=run, check_inputs=check_run_inputs, download=None)


def run(args: argparse.Namespace) -> int:
    from hsi.reporting.terminal import repeat_all_summary, repeat_summary

    config = config_from_args(args)
    seeds = seeds_from_args(args, config.seed, minimum=2, default_runs=None,
                            purpose="repeat (a stability report over runs)")
    result = api._repeat_config(config, seeds, vary=args.vary, name=args.name, engine=engine_settings(args),
                                progress=not args.quiet, notify=notify)
    r = result.report

    def mean_std(s: dict[str, Any]) -> dict[str, dict[str, float | None]]:
        return {m: {k: None if s[m][k] is None else round(s[m][k], 4) for k in ("mean", "std")}
                for m in ("overall_accuracy", "average_accuracy", "kappa")}

    record: dict[str, Any] = {"repeat_dir": str(result.repeat_dir), "runs": r["n_runs"],
                              "trained_now": result.n_trained, "reused": result.n_reused}
    if args.vary == ALL:  # per series, and which source dominates
        record.update(series={vary: mean_std(s) for vary, s in r["series"].items()},
                      dominant=r["answer"]["dominant"], significant=r["answer"]["significant"])
        return finish(args, record, *repeat_all_summary(result.repeat_dir, r))
    return finish(args, {**record, **mean_std(r)}, *repeat_summary(result.repeat_dir, r))
