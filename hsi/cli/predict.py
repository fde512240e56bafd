"""`hsi-classify predict`: classify a scene with a saved model.pt alone."""

from __future__ import annotations

import argparse

from hsi.cli.train import add_nan_policy_argument


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("predict", help="classify every pixel of a scene with a saved model.pt")
    parser.add_argument("--checkpoint", required=True, help="model.pt of a finished train run")
    parser.add_argument("--dataset", help="built-in scene to classify")
    parser.add_argument("--cube", help="custom cube file to classify")
    parser.add_argument("--cube-key", help="variable name of the cube inside a .mat file")
    parser.add_argument("--data-dir", help="folder with <dataset>/<files>")
    parser.add_argument("--no-download", dest="download", action="store_false", help="never download")
    parser.add_argument("--out", default="runs", help="folder for the output folder (default runs/)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:<index>")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="patches per forward pass (default: sized to the device's memory)")
    add_nan_policy_argument(parser, default="error")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hsi.experiments.predict import predict_run

    out = predict_run(args.checkpoint, dataset=args.dataset, cube=args.cube, cube_key=args.cube_key,
                      data_dir=args.data_dir, download=args.download, out=args.out, device=args.device,
                      batch_size=args.batch_size, nan_policy=args.nan_policy)
    print(out)
    return 0
