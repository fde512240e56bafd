"""`hsi-classify predict`: classify a scene with a saved model alone."""

from __future__ import annotations

import argparse
from typing import Any

from hsi import api
from hsi.cli.options import WINDOWED_FORMATS, file_formats
from hsi.cli.output import add_output_arguments, finish
from hsi.cli.repeat import add_engine_arguments, engine_settings, notify
from hsi.cli.train import add_inference_argument, add_nan_policy_argument
from hsi.config import RunConfig


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict", help="classify every pixel of a scene with a saved model",
        description="Classify every pixel of a scene with the model of a finished train run and write an "
        "output folder with prediction.npy, maps, report.md and report.html. With ground truth (--dataset, "
        "or --cube with --gt) it also scores the prediction on the labelled pixels: OA, AA, kappa and an "
        "errors map. A cube read tile by tile can be classified on a Ray cluster (--engine ray: each tile is one "
        "task; docs/cluster.md).",
    )
    parser.add_argument("--checkpoint", required=True, help="a finished train run: its folder or model.json "
                        "(or the model.pt of earlier versions)")
    parser.add_argument("--dataset", help="built-in scene to classify")
    parser.add_argument("--cube", help=f"custom cube file to classify: {file_formats('cube')} (.mat v7.3 included; "
                        f"ENVI: the .hdr or its data file); without --gt also {WINDOWED_FORMATS}, read tile by tile")
    parser.add_argument("--cube-key", help="variable name of the cube inside a .mat file")
    parser.add_argument("--gt", help=f"with --cube: its ground truth (0 = unlabelled), to score the prediction: "
                        f"{file_formats('gt')}")
    parser.add_argument("--gt-key", help="variable name of the ground truth inside a .mat file")
    parser.add_argument("--data-dir", help="folder with <dataset>/<files>")
    parser.add_argument("--no-download", dest="download", action="store_false", help="never download")
    parser.add_argument("--out", default="runs", help="folder for the output folder (default runs/)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:<index>")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="patches per forward pass (default: sized to the device's memory)")
    parser.add_argument("--tile-size", type=int, default=None,
                        help="a --cube without --gt (ENVI, .npy, HDF5, GeoTIFF) is read and classified in tiles of "
                        "this many pixels a side, resumably (default 512; memory grows with its square)")
    parser.add_argument("--probabilities", action="store_true",
                        help="tiled cubes: also write the class probabilities and a confidence band (uint8, x 255)")
    add_inference_argument(parser, default="auto")
    add_nan_policy_argument(parser, default="error")
    add_engine_arguments(parser, jobs=False, unit="tile", title="where the tiles of a --cube read tile by tile are "
                         "classified")
    add_output_arguments(parser)
    parser.set_defaults(func=run, check_inputs=check_inputs)


def check_inputs(args: argparse.Namespace) -> None:
    """--out, the scene's name and its files, checked before torch is imported (the checkpoint needs it)."""
    api._check_predict_inputs(args.out, RunConfig(dataset=args.dataset, cube=args.cube, gt=args.gt,
                                                  data_dir=args.data_dir, download=args.download is not False))


def run(args: argparse.Namespace) -> int:
    from hsi.reporting.terminal import headline_line, report_line

    out, metrics = api._predict_folder(
        args.checkpoint, dataset=args.dataset, cube=args.cube, cube_key=args.cube_key, data_dir=args.data_dir,
        download=args.download, out=args.out, device=args.device, batch_size=args.batch_size,
        nan_policy=args.nan_policy, inference=args.inference, gt=args.gt, gt_key=args.gt_key,
        tile_size=args.tile_size, probabilities=args.probabilities, engine=engine_settings(args), notify=notify)
    record: dict[str, Any] = {"run_dir": str(out)}
    lines = []
    if metrics is not None:
        record.update({k: round(metrics[k], 4) if metrics[k] is not None else None
                       for k in ("overall_accuracy", "average_accuracy", "kappa")})
        lines.append(f"{headline_line(metrics)}  on {metrics.get('scored_on', 'the labelled pixels')}")
    else:
        lines.append("no ground truth given: the prediction is not scored (give --dataset, or --cube with --gt)")
    lines.append(report_line(out, "report.md") if metrics is not None else f"report: {out / 'report.html'}")
    return finish(args, record, lines, [])
