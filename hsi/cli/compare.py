"""`hsi-classify compare`: train several models on the same split(s) and tabulate them."""

from __future__ import annotations

import argparse

from hsi import api
from hsi._core.errors import ConfigError
from hsi.cli.output import finish
from hsi.cli.repeat import add_engine_arguments, add_seed_arguments, engine_settings, notify, seeds_from_args
from hsi.cli.train import SCENE_USAGE, add_data_arguments, add_run_arguments, check_run_inputs, config_from_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="train several models on the same split(s); one table, chart and JSON",
        usage=f"%(prog)s --models NAME,NAME,... {SCENE_USAGE} [options]",
        description="Train each model of --models on the same training/test split (one split per seed) and "
        "write a compare folder with every run folder plus compare.md, compare.csv, compare.json and "
        "compare.png (OA, AA, kappa, parameters, train and inference seconds). Each seed is one split "
        "shared by every model; mean ± std over seeds with more than one run.",
    )
    parser.add_argument("--models", required=True,
                        help="comma-separated model names, e.g. hybridsn,mobilenet_v2,resnet,svm "
                        "(see `hsi-classify models`)")
    add_seed_arguments(parser.add_argument_group("seeds"), runs_help="runs per model", default_runs=1)
    add_data_arguments(parser)
    add_run_arguments(parser)
    add_engine_arguments(parser, jobs=False)
    for action in parser._actions:
        if action.dest == "model":  # shared with `train`; compare takes --models instead
            action.help = argparse.SUPPRESS
    parser.set_defaults(func=run, check_inputs=check_run_inputs, download=None)


def run(args: argparse.Namespace) -> int:
    from hsi.reporting.terminal import compare_summary

    if args.model is not None:
        raise ConfigError(f"compare takes --models NAME,NAME,...; got --model {args.model}. Use --models.")
    config = config_from_args(args)
    seeds = seeds_from_args(args, config.seed, minimum=1, default_runs=1, purpose="compare")
    result = api._compare_config(config, args.models, seeds=seeds, engine=engine_settings(args),
                                 progress=not args.quiet, notify=notify)
    record = {
        "compare_dir": str(result.compare_dir),
        "overall_accuracy": {r["model"]: round(r["overall_accuracy"]["mean"], 4) for r in result.results},
    }
    return finish(args, record, *compare_summary(result.compare_dir, result.results, split_method=config.split))
