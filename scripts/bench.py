#!/usr/bin/env python
"""Speed and memory benchmark of the library's own training and full-scene path.

Developer script (never imported by ``hsi``). Every case runs in a subprocess of its own, so
the peak host RSS it reports is that case's alone, and prints one JSON line per measurement:

* ``indian_pines_shape``: a stand-in 145x145x200 cube (random values) laid over the real
  Indian Pines ground truth (``indian_pines/Indian_pines_gt.mat``) for the class layout;
  HybridSN, PCA 30, 25x25 patches, trained on 30% and on 10% of the labelled pixels
  (two lines), then every pixel classified.
* ``salinas_a``: the real Salinas-A scene, 10% training (534 pixels), per-epoch seconds,
  full-scene classification and the test overall accuracy.
* ``pavia_u_shape``: a stand-in 610x340x103 cube over the real Pavia University ground
  truth; host memory through PCA (15 components), the patch source and full-scene
  classification of all 207,400 pixels with an untrained HybridSN (time and memory only).

The stand-in cubes are random: it is the shape, not the values, that sets the time.

Every case classifies the full scene both ways, dense (one fully convolutional pass per
tile) and patch by patch, alternating them ``--repeats`` times in the same process, and
reports the median seconds, pixels per second and MACs per pixel of each, the speed-up and
the count of pixels whose classes differ. ``--inference dense`` or ``patches`` runs one way
alone, so the case's peak host RSS is that way's (with ``--epochs 0`` nothing is trained).

Usage::

    python scripts/bench.py --quick                      # small CPU version, < 1 min on 2 cores
    python scripts/bench.py --device cuda                # the full cases on a GPU
    python scripts/bench.py --cases salinas_a --device cpu --epochs 3
    python scripts/bench.py --quick --cube CUBE --gt GT    # a small scene of your own (the tests)
    python scripts/bench.py --cases pavia_u_shape --device cpu --inference dense   # one way's peak RSS

The data folder is ``--data-dir``, else ``$HSI_DATA_DIR``, else ``../shared/data`` beside
the repository. With ``--cube`` and ``--gt`` no real file is read: the ``salinas_a`` case
trains on that scene instead, and the shape cases lay their stand-in cubes over its ground truth.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hsi.training.checkpoint import RunModel

CASES = ("indian_pines_shape", "salinas_a", "pavia_u_shape")
NOTE = "stand-in cube of random values over the real ground truth: the shape, not the values, sets the time"
REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small CPU version: 11x11 patches, PCA 15, 1 epoch, cropped scenes (< 1 min on 2 cores)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:<index> (default auto)")
    parser.add_argument("--epochs", type=int, help="epochs per training run (default 100; --quick 1)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="patches per optimiser step (default 128; salinas_a 256)")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    parser.add_argument("--data-dir", help="folder holding <scene>/<files> (default $HSI_DATA_DIR or ../shared/data)")
    parser.add_argument("--cube", help="a custom scene's cube: the salinas_a case trains on it (needs --gt)")
    parser.add_argument("--gt", help="a custom ground truth: with --cube the salinas_a case's, and the layout of the "
                                     "shape cases' stand-in cubes instead of the real ground truths")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's own choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-steps", type=int, default=0,
                        help="also time this many training steps on patches and on crops, alternating (one step: "
                             "a batch drawn at random from the training pixels), with the cost share "
                             "--train-input auto predicts")
    parser.add_argument("--inference", choices=("both", "dense", "patches"), default="both",
                        help="full-scene ways to time: both, alternating (default), or one alone (its peak RSS)")
    parser.add_argument("--repeats", type=int, help="full-scene passes per way; the median is reported "
                                                    "(default 3; --quick 1; on CUDA one more warm-up pass)")
    parser.add_argument("--fp32", action="store_true",
                        help="no bf16 autocast on CUDA: the plain fp32 path, to compare accuracy with the fast one")
    parser.add_argument("--big-scene", nargs=3, type=int, metavar=("LINES", "SAMPLES", "BANDS"),
                        help="instead of the cases: write a synthetic int16 ENVI cube of this size with map info, "
                             "classify it with `predict --checkpoint` tile by tile in a subprocess, report pixels/s, "
                             "peak RSS and the output GeoTIFF's georeferencing (BANDS must be the checkpoint's)")
    parser.add_argument("--checkpoint", help="--big-scene: the train run (folder) whose model classifies the scene")
    parser.add_argument("--tile-size", type=int, help="--big-scene: predict --tile-size (default: predict's own)")
    parser.add_argument("--work-dir", help="--big-scene: folder for the cube and the output (default: a new "
                                           "temporary folder); the cube is deleted afterwards unless --keep-scene")
    parser.add_argument("--keep-scene", action="store_true", help="--big-scene: keep the cube and the output")
    parser.add_argument("--big-train", nargs=3, type=int, metavar=("LINES", "SAMPLES", "BANDS"),
                        help="instead of the cases: write a synthetic int16 ENVI cube of this size and its ground "
                             "truth (a 6x6 labelled block in every 48x48 field), run `train --lazy on` on it in a "
                             "subprocess, report seconds, peak RSS and the metrics (reuses the cube in --work-dir)")
    parser.add_argument("--model", default="random_forest", help="--big-train: the model (default random_forest)")
    parser.add_argument("--patch-size", type=int, default=5, help="--big-train: patch side (default 5)")
    parser.add_argument("--train-ratio", type=float, default=0.1, help="--big-train: share trained on (default 0.1)")
    parser.add_argument("--run-case", help=argparse.SUPPRESS)  # internal: run one case in this process
    args = parser.parse_args(argv)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {', '.join(CASES)}")
    if args.cube and not args.gt:
        parser.error("--cube needs --gt")
    if args.big_train and not args.epochs:
        args.epochs = 1
    if args.big_scene and not args.checkpoint:
        parser.error("--big-scene needs --checkpoint RUN_DIR (a train run whose model has BANDS input bands)")
    if args.epochs is None:
        args.epochs = 1 if args.quick else 100
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    return args


def data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir or os.environ.get("HSI_DATA_DIR") or REPO.parent / "shared" / "data")


# ---------------------------------------------------------------- one case, in its own process


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20, 1)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _ground_truth(args: argparse.Namespace, scene_name: str) -> Any:
    from hsi.data.io import load_array
    from hsi.data.scene import labels_from_ground_truth
    from hsi.data.specs import get_spec

    if args.gt:  # a custom layout (the tests' synthetic scene)
        labels, _ = labels_from_ground_truth(load_array(Path(args.gt), role="gt"))
        return labels
    spec = get_spec(scene_name)
    gt = load_array(data_dir(args) / spec.folder / spec.gt_file, spec.gt_key, role="gt")
    labels, _ = labels_from_ground_truth(gt, spec.class_ids)
    return labels


def _crop(labels: Any, size: int) -> Any:
    """The ``size`` x ``size`` window with the most labelled pixels on a coarse grid (for --quick)."""
    h, w = labels.shape
    best, best_count = (0, 0), -1
    for r in range(0, max(h - size, 0) + 1, max(size // 2, 1)):
        for c in range(0, max(w - size, 0) + 1, max(size // 2, 1)):
            count = int((labels[r : r + size, c : c + size] >= 0).sum())
            if count > best_count:
                best, best_count = (r, c), count
    r, c = best
    return labels[r : r + size, c : c + size]


def _macs_per_pixel(classifier: Any, source: Any, inference: str) -> float:
    """Multiply-accumulates per pixel of a full-scene map, counted on a weightless (meta) copy.

    Patches: one patch's MACs. Dense: one tile's MACs times the tiles ``predict_scene`` runs
    (halos and the tiles' overhang past the scene included), divided by the pixels.
    """
    import copy
    import math

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from hsi.evaluation.predict import DENSE_TILE

    if inference == "patches":
        return float(classifier.profile()["macs_per_patch"])
    meta = copy.deepcopy(classifier.network).to("meta").eval()
    h, w = min(DENSE_TILE, source.height), min(DENSE_TILE, source.width)
    halo = source.patch_size - 1
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        meta.forward_dense(torch.empty(1, source.n_channels, h + halo, w + halo, device="meta"))
    n_tiles = math.ceil(source.height / h) * math.ceil(source.width / w)
    return counter.get_total_flops() / 2 * n_tiles / (source.height * source.width)


def _train_step_timings(model: Any, source: Any, train: Any, *, batch_size: int, steps: int,
                        seed: int) -> dict[str, Any]:
    """Seconds of one optimiser step on patches and on crops, alternating, ``steps`` times each.

    Each step is ``fit`` for one epoch over ``batch_size`` pixels drawn at random from ``train``:
    the blocks a random batch touches, as in a real epoch. Also reports what ``--train-input
    auto`` predicts for the whole training set (:func:`hsi.training.crops.crop_cost_share`).
    """
    import numpy as np
    import torch

    from hsi.models.profile import dense_cost
    from hsi.training.crops import CROPS_COST_SHARE, crop_cost_share
    from hsi.training.trainer import PixelSet, fit

    generator = torch.Generator().manual_seed(seed)
    seconds: dict[str, list[float]] = {"patches": [], "crops": []}
    for i in range(steps):
        pick = torch.randperm(len(train), generator=generator)[:batch_size].to(train.rows.device)
        batch = PixelSet(train.rows[pick], train.cols[pick], train.targets[pick])
        for way in ("patches", "crops") if i % 2 == 0 else ("crops", "patches"):
            _sync(source.device)
            started = time.perf_counter()
            fit(model, source, batch, epochs=1, batch_size=batch_size, lr=1e-3, seed=seed, progress=False,
                crops=way == "crops")
            _sync(source.device)
            seconds[way].append(time.perf_counter() - started)
    median = {way: float(np.median(t)) for way, t in seconds.items()}
    cost = dense_cost(model, in_chans=source.n_channels, patch_size=source.patch_size)
    share = crop_cost_share(cost, train.rows.cpu(), train.cols.cpu(), height=source.height, width=source.width,
                            patch_size=source.patch_size, batch_size=batch_size)
    return {
        "train_step_seconds_patches": round(median["patches"], 3),
        "train_step_seconds_crops": round(median["crops"], 3),
        "train_step_seconds_all": {way: [round(t, 3) for t in ts] for way, ts in seconds.items()},
        "crops_speedup": round(median["patches"] / median["crops"], 2),
        "crop_cost_share_predicted": round(share, 3),
        "train_input_auto": "crops" if share <= CROPS_COST_SHARE else "patches",
    }


def run_case(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Runs one case in this process; returns its JSON records."""
    import numpy as np
    import torch

    from hsi.data.patches import PatchSource
    from hsi.data.scene import load_custom_scene, load_scene
    from hsi.data.splits import split_random
    from hsi.evaluation.predict import predict_scene
    from hsi.features.pca import SpectralPCA
    from hsi.models import create_model
    from hsi.training.batching import inference_batch_size, train_micro_batch
    from hsi.training.classifier import TorchClassifier
    from hsi.training.device import device_name, flush_denormals, resolve_device
    from hsi.training.seed import seed_everything, set_deterministic
    from hsi.training.trainer import PixelSet, fit

    case = args.run_case
    from hsi._core.host_memory import keep_freed_memory

    keep_freed_memory()  # as hsi-classify's main() does
    if args.fp32:  # the library has no switch for this; a developer comparison only
        from contextlib import nullcontext

        import hsi.training.classifier
        import hsi.training.trainer

        def full_precision(device: torch.device, cpu_bf16: bool = False) -> nullcontext[None]:
            return nullcontext()

        hsi.training.trainer.autocast_for = hsi.training.classifier.autocast_for = full_precision
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    set_deterministic(False)  # cudnn.benchmark on: the fast, non-bit-reproducible path
    flush_denormals()  # as every run does
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    quick = args.quick
    patch_size, pca_components = (11, 15) if quick else (25, 30)
    rng = np.random.default_rng(args.seed)

    if case == "salinas_a":
        if args.cube:
            scene = load_custom_scene(args.cube, args.gt)
        else:
            scene = load_scene("salinas_a", data_dir=data_dir(args), download=False)
        cube, labels, ratios, real = scene.cube, scene.labels, (0.1,), True
        batch_size = args.batch_size or 256
    else:
        gt_name, shape = {"indian_pines_shape": ("indian_pines", (145, 145, 200)),
                          "pavia_u_shape": ("pavia_u", (610, 340, 103))}[case]
        labels = _ground_truth(args, gt_name)
        if quick:
            labels = _crop(labels, 40)
        if case == "pavia_u_shape":
            pca_components, ratios = 15, (0.3,)  # the paper's PCA for Pavia University; no training
        else:
            ratios = (0.3, 0.1)
        cube = rng.standard_normal((*labels.shape, shape[2]), dtype=np.float32)
        real = False
        batch_size = args.batch_size or 128
    n_classes = int(labels.max()) + 1
    epochs = 0 if case == "pavia_u_shape" else args.epochs

    records = []
    for ratio in ratios:
        seed_everything(args.seed)
        split = split_random(labels, train_ratio=ratio, seed=args.seed)
        train_mask = split.train.copy()
        if quick and case != "pavia_u_shape":  # at most 64 training pixels
            train_mask.flat[np.flatnonzero(train_mask)[rng.permutation(int(train_mask.sum()))[64:]]] = False
        started = time.perf_counter()
        pca = SpectralPCA(pca_components, seed=args.seed).fit(cube[train_mask])
        features = pca.transform(cube)
        pca_seconds = time.perf_counter() - started
        model = create_model("hybridsn", in_chans=pca_components, num_classes=n_classes,
                             patch_size=patch_size).to(device)
        source = PatchSource(features, patch_size=patch_size, device=device)
        rows, cols = source.pixel_coordinates(train_mask)
        train = PixelSet(rows, cols, torch.from_numpy(labels[train_mask]).to(device))
        sizes = {"in_chans": pca_components, "patch_size": patch_size, "device": device}
        micro = train_micro_batch(model, batch_size=batch_size, **sizes)
        _sync(device)
        started = time.perf_counter()
        state = fit(model, source, train, epochs=epochs, batch_size=batch_size, lr=1e-3, seed=args.seed,
                    progress=False)
        _sync(device)
        train_seconds = time.perf_counter() - started
        epoch_seconds = [round(row["seconds"], 3) for row in state.history]
        steps = _train_step_timings(model, source, train, batch_size=batch_size, steps=args.train_steps,
                                    seed=args.seed) if args.train_steps else {}
        infer_batch = inference_batch_size(model, **sizes)
        classifier = TorchClassifier("hybridsn", model, in_chans=pca_components, num_classes=n_classes,
                                     patch_size=patch_size)
        ways = ("dense", "patches") if args.inference == "both" else (args.inference,)
        maps: dict[str, Any] = {}
        timings: dict[str, list[float]] = {way: [] for way in ways}
        cpu: dict[str, list[float]] = {way: [] for way in ways}  # user + system: less disturbed by other load
        for i in range(args.repeats + (device.type == "cuda")):  # on GPU a first pass autotunes cuDNN
            for way in ways if i % 2 == 0 else ways[::-1]:  # alternated: the shared machine's load hits both
                _sync(device)
                started, cpu_started = time.perf_counter(), _cpu_seconds()
                maps[way] = predict_scene(classifier, source, inference=way)
                _sync(device)
                timings[way].append(time.perf_counter() - started)
                cpu[way].append(_cpu_seconds() - cpu_started)
        main_way = ways[0]  # dense: what `auto` picks for HybridSN
        prediction = maps[main_way]
        seconds = {way: float(np.median(t[1:] if device.type == "cuda" else t)) for way, t in timings.items()}
        n_pixels = labels.size
        accuracy = None
        if real and epochs:
            accuracy = round(float((prediction[split.test] == labels[split.test]).mean()), 4)
        per_way: dict[str, Any] = {}
        for way in ways:
            per_way[f"full_scene_seconds_{way}"] = round(seconds[way], 3)
            per_way[f"full_scene_seconds_{way}_all"] = [round(t, 3) for t in timings[way]]
            per_way[f"full_scene_cpu_seconds_{way}"] = round(float(np.median(cpu[way])), 3)
            per_way[f"pixels_per_second_{way}"] = round(n_pixels / seconds[way], 1)
            per_way[f"macs_per_pixel_{way}"] = round(_macs_per_pixel(classifier, source, way))
        if len(ways) == 2:
            per_way["dense_speedup"] = round(seconds["patches"] / seconds["dense"], 2)
            per_way["pixels_differing"] = int((maps["dense"] != maps["patches"]).sum())
        records.append({
            "case": case,
            "device": str(device),
            "device_name": device_name(device),
            "torch": torch.__version__,
            "precision": "bf16 autocast" if device.type == "cuda" and not args.fp32 else "fp32",
            "threads": torch.get_num_threads(),
            "quick": quick,
            "scene_shape": [*labels.shape, int(cube.shape[2])],
            "patch_size": patch_size,
            "pca_components": pca_components,
            "train_ratio": ratio,
            "n_train": len(train),
            "epochs": epochs,
            "batch_size": batch_size,
            "micro_batch": micro,
            "pca_seconds": round(pca_seconds, 3),
            "train_seconds": round(train_seconds, 3),
            "epoch_seconds": epoch_seconds,
            "epoch_seconds_median": float(np.median(epoch_seconds)) if epoch_seconds else None,
            "samples_per_second": round(len(train) * epochs / train_seconds, 1) if epochs else None,
            "full_scene_pixels": int(n_pixels),
            "inference": main_way,
            "full_scene_seconds": round(seconds[main_way], 3),
            "full_scene_seconds_first": round(timings[main_way][0], 3),
            "pixels_per_second": round(n_pixels / seconds[main_way], 1),
            **per_way,
            **steps,
            "dense_tiles_per_pass": classifier.dense_batch_size(source, min(32, source.height),
                                                                min(32, source.width)),
            "inference_batch": infer_batch,
            "overall_accuracy": accuracy,
            "peak_host_rss_mb": _peak_rss_mb(),
            "peak_gpu_memory_mb": (round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
                                   if device.type == "cuda" else None),
            "note": (f"custom scene {Path(args.cube).name}" if args.cube else "real scene") if real else NOTE,
        })
        del model, source, features
    return records


# ---------------------------------------------------------------- a scene larger than memory

#: The synthetic big scene's map info: UTM zone 11 North (EPSG:32611), 5 m pixels.
BIG_SCENE_MAP_INFO = "{UTM, 1.000, 1.000, 500000.000, 4100000.000, 5.0, 5.0, 11, North, WGS-84, units=Meters}"
BIG_SCENE_EDGE = 64  # samples of every line left all zero on each side: outside the swath (nodata)


def _write_field_cube(header: Path, prototypes: Any, lines: int, samples: int, rng: Any, *, noise: int, edge: int,
                      strip: int) -> None:
    """Writes a BIL int16 ENVI cube with map info: 48 x 48 fields, each one of the 8 ``prototypes`` (8, B)
    plus uniform noise of +-``noise``, and ``edge`` all-zero samples at each side of every line (nodata)."""
    import numpy as np

    bands = prototypes.shape[1]
    header.write_text(
        f"ENVI\nsamples = {samples}\nlines = {lines}\nbands = {bands}\nheader offset = 0\nfile type = ENVI Standard\n"
        f"data type = 2\ninterleave = bil\nbyte order = 0\nmap info = {BIG_SCENE_MAP_INFO}\n"
    )
    field_cols = np.arange(samples) // 48
    with header.with_suffix(".img").open("wb") as f:
        for start in range(0, lines, strip):
            rows = np.arange(start, min(lines, start + strip))
            fields = (rows[:, None] // 48 * 7919 + field_cols[None, :] * 104729) % 8  # (h, W)
            block = prototypes[fields].transpose(0, 2, 1)  # (h, B, W): BIL
            block = block + rng.integers(-noise, noise + 1, size=block.shape, dtype=np.int16)
            if edge:
                block[:, :, :edge] = 0
                block[:, :, samples - edge:] = 0
            f.write(block.astype("<i2").tobytes())


def write_big_scene(header: Path, lines: int, samples: int, bands: int, checkpoint: RunModel, seed: int,
                    strip: int = 64) -> None:
    """Writes a BIL int16 ENVI cube: fields of 48 x 48 pixels, each one of 8 spectra drawn in the checkpoint's
    PCA space (so its model sees plausible inputs), plus noise; BIG_SCENE_EDGE zero samples at each side."""
    import numpy as np

    pca = checkpoint.pca
    mean, components = np.asarray(pca["mean"], np.float32), np.asarray(pca["components"], np.float32)
    if mean.shape[0] != bands:
        raise SystemExit(f"--big-scene BANDS is {bands} but the checkpoint reads {mean.shape[0]} bands")
    rng = np.random.default_rng(seed)
    n_components = components.shape[0]
    coefficients = rng.normal(size=(8, n_components)) * float(pca["scale"]) / np.arange(1, n_components + 1)
    prototypes = np.clip(mean + coefficients @ components, -32000, 32000).astype(np.int16)  # (8, B)
    _write_field_cube(header, prototypes, lines, samples, rng, noise=30, edge=BIG_SCENE_EDGE, strip=strip)


def big_scene_case(args: argparse.Namespace) -> dict[str, Any]:
    """Writes the synthetic scene, runs `hsi-classify predict` on it in a subprocess, reads the GeoTIFF back."""
    import shutil
    import tempfile

    from hsi.training.checkpoint import load_run_model

    lines, samples, bands = args.big_scene
    checkpoint = load_run_model(args.checkpoint)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="hsi-big-scene-"))
    work.mkdir(parents=True, exist_ok=True)
    header = work / "big_scene.hdr"
    started = time.perf_counter()
    write_big_scene(header, lines, samples, bands, checkpoint, args.seed)
    write_seconds = time.perf_counter() - started
    command = [sys.executable, "-m", "hsi", "predict", "--checkpoint", str(args.checkpoint), "--cube", str(header),
               "--out", str(work / "out"), "--device", args.device, "--json"]
    if args.tile_size:
        command += ["--tile-size", str(args.tile_size)]
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False, cwd=REPO)
    seconds = time.perf_counter() - started
    scale = 1 if sys.platform == "darwin" else 1024
    peak_rss_mb = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale / 2**20, 1)
    record: dict[str, Any] = {
        "case": "big_scene", "lines": lines, "samples": samples, "bands": bands,
        "cube_bytes": header.with_suffix(".img").stat().st_size, "write_seconds": round(write_seconds, 1),
        "model": checkpoint.model_name, "device": args.device, "tile_size": args.tile_size,
        "exit_status": done.returncode, "predict_seconds": round(seconds, 1),
        "pixels_per_second": round(lines * samples / seconds, 1), "peak_predict_rss_mb": peak_rss_mb,
        "threads": os.environ.get("OMP_NUM_THREADS", "default"),
    }
    if done.returncode == 0:
        import numpy as np
        import rasterio

        out = Path(json.loads(done.stdout.strip().splitlines()[-1])["run_dir"])
        with rasterio.open(out / "prediction.tif") as tif:
            ids = tif.read(1, out_shape=(min(tif.height, 500), min(tif.width, 500)))  # a decimated look
            record["geotiff"] = {
                "path": str(out / "prediction.tif"), "bytes": (out / "prediction.tif").stat().st_size,
                "crs": tif.crs.to_string(), "transform": list(tif.transform)[:6], "shape": [tif.height, tif.width],
                "dtype": tif.dtypes[0], "nodata": tif.nodata, "block_shapes": tif.block_shapes[0],
                "compression": tif.compression.name if tif.compression else None, "tags": tif.tags(1),
                "class_fractions_decimated": {int(k): round(float(v) / ids.size, 4)
                                              for k, v in zip(*np.unique(ids, return_counts=True), strict=True)},
            }
        record["prediction"] = json.loads((out / "prediction.json").read_text())
    if not args.keep_scene:
        shutil.rmtree(work, ignore_errors=True)
    return record


# ---------------------------------------------------------------- training on a scene larger than memory


def write_train_scene(header: Path, lines: int, samples: int, bands: int, seed: int, strip: int = 64) -> Path:
    """Writes a BIL int16 ENVI cube of 48 x 48 fields, each one of 8 random spectra plus noise, and its ground truth
    ``<stem>_gt.npy`` (uint8): a 6 x 6 block at the centre of every field labelled with the field's class (1..8)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    prototypes = (1000 + rng.normal(size=(8, bands)).cumsum(axis=1) * 40).astype(np.int16)  # smooth spectra
    _write_field_cube(header, prototypes, lines, samples, rng, noise=300, edge=0, strip=strip)
    all_rows, all_cols = np.arange(lines)[:, None], np.arange(samples)[None, :]
    fields = (all_rows // 48 * 7919 + all_cols // 48 * 104729) % 8
    centre = ((all_rows % 48) // 6 == 4) & ((all_cols % 48) // 6 == 4)
    gt = np.where(centre, fields + 1, 0).astype(np.uint8)
    gt_path = header.with_name(header.stem + "_gt.npy")
    np.save(gt_path, gt)
    return gt_path


def big_train_case(args: argparse.Namespace) -> dict[str, Any]:
    """Writes (or reuses) the synthetic scene, runs `hsi-classify train --lazy on` on it in a subprocess."""
    import tempfile

    lines, samples, bands = args.big_train
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="hsi-big-train-"))
    work.mkdir(parents=True, exist_ok=True)
    header = work / f"big_train_{lines}x{samples}x{bands}.hdr"
    gt_path = header.with_name(header.stem + "_gt.npy")
    write_seconds = 0.0
    if not (header.with_suffix(".img").is_file() and gt_path.is_file()):
        started = time.perf_counter()
        write_train_scene(header, lines, samples, bands, args.seed)
        write_seconds = time.perf_counter() - started
    command = [sys.executable, "-m", "hsi", "train", "--cube", str(header), "--gt", str(gt_path), "--lazy", "on",
               "--model", args.model, "--patch-size", str(args.patch_size), "--pca-components", "15",
               "--epochs", str(args.epochs), "--train-ratio", str(args.train_ratio), "--seed", str(args.seed),
               "--out", str(work / "runs"), "--device", args.device, "--json", "--quiet",
               "--recipe", "paper"]  # one network, as docs/performance.md measured: the data path, not the recipe
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False, cwd=REPO)
    seconds = time.perf_counter() - started
    scale = 1 if sys.platform == "darwin" else 1024
    record: dict[str, Any] = {
        "case": "big_train", "lines": lines, "samples": samples, "bands": bands, "model": args.model,
        "patch_size": args.patch_size, "epochs": args.epochs, "train_ratio": args.train_ratio,
        "cube_bytes": header.with_suffix(".img").stat().st_size,
        "float32_cube_bytes": lines * samples * bands * 4, "write_seconds": round(write_seconds, 1),
        "exit_status": done.returncode, "train_command_seconds": round(seconds, 1),
        "peak_train_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale / 2**20, 1),
        "threads": os.environ.get("OMP_NUM_THREADS", "default"),
    }
    if done.returncode == 0:
        run_dir = Path(json.loads(done.stdout.strip().splitlines()[-1])["run_dir"])
        metrics = json.loads((run_dir / "metrics.json").read_text())
        record.update({k: metrics.get(k) for k in ("overall_accuracy", "n_train", "n_val", "n_test", "train_seconds",
                                                   "read_seconds", "inference_seconds", "pca_fit_pixels")})
        record["run_dir"] = str(run_dir)
    if not args.keep_scene and not args.work_dir:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return record


# ---------------------------------------------------------------- driver


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.big_scene:
        print(json.dumps(big_scene_case(args)), flush=True)
        return 0
    if args.big_train:
        print(json.dumps(big_train_case(args)), flush=True)
        return 0
    if args.run_case:
        for record in run_case(args):
            print(json.dumps(record), flush=True)
        return 0
    forwarded = ["--device", args.device, "--epochs", str(args.epochs), "--seed", str(args.seed),
                 "--data-dir", str(data_dir(args)), "--inference", args.inference, "--repeats", str(args.repeats)]
    if args.quick:
        forwarded.append("--quick")
    if args.fp32:
        forwarded.append("--fp32")
    if args.batch_size:
        forwarded += ["--batch-size", str(args.batch_size)]
    if args.threads:
        forwarded += ["--threads", str(args.threads)]
    if args.train_steps:
        forwarded += ["--train-steps", str(args.train_steps)]
    for flag in ("cube", "gt"):
        if getattr(args, flag):
            forwarded += [f"--{flag}", str(getattr(args, flag))]
    failed = 0
    for case in args.cases:
        # A fresh process per case: its peak RSS is that case's alone.
        done = subprocess.run([sys.executable, __file__, "--run-case", case, *forwarded],
                              stdout=subprocess.PIPE, text=True, check=False)
        sys.stdout.write(done.stdout)
        sys.stdout.flush()
        if done.returncode:
            failed += 1
            print(json.dumps({"case": case, "error": f"exit status {done.returncode}"}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
