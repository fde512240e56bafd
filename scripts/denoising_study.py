#!/usr/bin/env python
"""The denoising study (issue 18): noise kind x protocol x front-end on real Salinas-A, resumable; docs/denoising.md.

Developer script (never imported by ``hsi``). A *cell* is one noise condition x one protocol x
one front-end x one seed, run with the steps of a train run (:mod:`hsi.experiments.steps`:
``prepare`` with ``--corrupt``, ``reduce`` with ``--denoise`` / ``--reduce``, ``fit``,
``predict``, ``evaluate``). Seed k draws the noise, the split and the initial weights. The
denoiser uses no label and no split, so it is fitted once per (condition, seed) and shared by
both protocols (``reduce(..., denoiser=...)``); its PSNR/SSIM against the clean cube and its
fitting seconds are written once per (condition, seed).

- conditions: ``clean``, ``gaussian:0.1``, ``gaussian:0.3``, ``gaussian:1.0`` (noise std as a
  fraction of each band's std), ``stripes:0.1``, ``stripes:0.3`` (share of striped columns per band);
- protocols: ``per-class-10`` (``--split per-class --train-per-class 10``), ``disjoint-10``
  (``--split disjoint --train-ratio 0.1``);
- front-ends: ``none`` (PCA), ``dncnn`` (DnCNN, then PCA), ``mnf`` (MNF instead of PCA);
- the noise control (``--control noise``) on disjoint-10 with dncnn, on the clean scene.

Each result is ``<out>/cells/<name>.json`` (written atomically); an existing file is skipped,
so an interrupted study resumes where it stopped. Seeds run outermost, so a partial study has
every cell at fewer seeds; the table states n per cell and "not measured" where n = 0.

Usage::

    nice -n 10 python scripts/denoising_study.py --seeds 5        # CPU settings (the defaults below)
    python scripts/denoising_study.py --device cuda --patch-size 25 --pca-components 30 --epochs 100 \\
        --denoise-depth 17 --denoise-width 64 --denoise-steps 2000 --out runs/denoising_gpu
    python scripts/denoising_study.py --report-only                # regenerate docs/denoising.md
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.ndimage

from hsi._core.files import atomic_save_json, atomic_write_text
from hsi.config import RunConfig

ROOT = Path(__file__).resolve().parents[1]  # the checkout: docs/ and ../shared/data (hsi is the installed package)

CONDITIONS = ("clean", "gaussian:0.1", "gaussian:0.3", "gaussian:1.0", "stripes:0.1", "stripes:0.3")
PROTOCOLS: dict[str, dict[str, Any]] = {
    "per-class-10": {"split": "per-class", "train_per_class": 10},
    "disjoint-10": {"split": "disjoint", "train_ratio": 0.1},
}
FRONT_ENDS: dict[str, dict[str, Any]] = {
    "none": {"reduce": "pca", "denoise": "none"},
    "dncnn": {"reduce": "pca", "denoise": "dncnn"},
    "mnf": {"reduce": "mnf", "denoise": "none"},
}
MARK_START, MARK_END = "<!-- study:start -->", "<!-- study:end -->"


# ---------------------------------------------------------------- image quality (no scikit-image dependency)


def mpsnr(clean: np.ndarray, other: np.ndarray) -> float:
    """Mean over bands of the PSNR (dB), each band's peak = its range in the clean cube."""
    ref, test = clean.astype(np.float64), other.astype(np.float64)
    peak = ref.max(axis=(0, 1)) - ref.min(axis=(0, 1))
    mse = np.maximum(((ref - test) ** 2).mean(axis=(0, 1)), 1e-12)
    return float(np.mean(10 * np.log10(np.maximum(peak, 1e-12) ** 2 / mse)))


def mssim(clean: np.ndarray, other: np.ndarray, sigma: float = 1.5) -> float:
    """Mean over bands of SSIM (Wang et al. 2004): gaussian window sigma 1.5, K1 0.01, K2 0.03, band range."""
    values = []
    for b in range(clean.shape[2]):
        x, y = clean[:, :, b].astype(np.float64), other[:, :, b].astype(np.float64)
        data_range = max(float(x.max() - x.min()), 1e-12)
        c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
        blur = lambda a: scipy.ndimage.gaussian_filter(a, sigma, truncate=3.5)  # noqa: E731 - 11x11 window
        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        ssim = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        values.append(float(ssim.mean()))
    return float(np.mean(values))


# ---------------------------------------------------------------- running cells


def base_config(args: argparse.Namespace, condition: str, protocol: str, front_end: str, seed: int) -> RunConfig:
    return RunConfig(
        dataset="salinas_a", data_dir=args.data_dir, download=False,
        corrupt=[] if condition == "clean" else [condition], pca_components=args.pca_components,
        patch_size=args.patch_size, model=args.model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        recipe="paper", seed=seed, device=args.device, denoise_depth=args.denoise_depth,
        denoise_width=args.denoise_width, denoise_steps=args.denoise_steps, out=str(args.out / "scratch"),
        **PROTOCOLS[protocol], **FRONT_ENDS[front_end],
    )


def cell_name(condition: str, protocol: str, front_end: str, seed: int) -> str:
    return f"{condition.replace(':', '-')}__{protocol}__{front_end}__seed{seed}"


def run_cell(config: RunConfig, denoiser: Any, control: bool = False) -> dict[str, Any]:
    """One train run through the steps (no run folder); with ``control``, its noise control instead."""
    from hsi.evaluation.leakage import control_summary
    from hsi.evaluation.metrics import classification_summary
    from hsi.experiments.steps import evaluate, fit, predict, prepare, reduce
    from hsi.features.controls import control_cube

    started = time.perf_counter()
    prepared = prepare(config)
    scene, split = prepared.scene, prepared.split
    if control:
        scene = dataclasses.replace(scene, cube=control_cube("noise", scene.cube, seed=config.seed))
        denoiser = None  # a denoiser of the control cube, fitted on it
    features = reduce(config, scene, split, denoiser=denoiser)
    fitted = fit(config, scene, split, features, prepared.device)
    prediction = predict(fitted)
    if control:
        test = split.test
        summary = classification_summary(scene.labels[test], prediction.labels[test],
                                         class_names=list(scene.class_names))
        metrics = control_summary("noise", summary, scene.labels[test], scene.labels[split.train])
    else:
        full = evaluate(scene, split, prediction, patch_size=fitted.decision_window, smooth=fitted.smooth)
        metrics = {k: full[k] for k in ("overall_accuracy", "average_accuracy", "kappa", "n_train", "n_test")}
    return {**metrics, "train_seconds": fitted.train_seconds, "cell_seconds": time.perf_counter() - started,
            "denoiser_seconds": features.denoiser.train_seconds if features.denoiser is not None else None,
            "config": config.to_dict()}


def denoiser_quality(config: RunConfig, clean: np.ndarray) -> tuple[Any, dict[str, Any]]:
    """Fits the condition's denoiser on the noisy cube and scores noisy and denoised cubes against the clean one."""
    from hsi.experiments.steps import prepare
    from hsi.training.denoise_fit import fit_denoiser
    from hsi.training.frontend import denoise_settings

    noisy = prepare(config).scene.cube
    settings = denoise_settings(config)
    assert settings is not None
    denoiser = fit_denoiser(noisy, settings)
    denoised = denoiser.apply(noisy)
    return denoiser, {
        "noisy_psnr": mpsnr(clean, noisy), "noisy_ssim": mssim(clean, noisy),
        "denoised_psnr": mpsnr(clean, denoised), "denoised_ssim": mssim(clean, denoised),
        "train_seconds": denoiser.train_seconds, "settings": dataclasses.asdict(settings),
    }


# ---------------------------------------------------------------- the report


def _stats(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _cell_text(results: list[dict[str, Any]], key: str, n_expected: int) -> str:
    values = [r[key] for r in results if r.get(key) is not None]
    if not values:
        return "not measured"
    mean, std = _stats(values)
    note = "" if len(values) == n_expected else f" (n={len(values)})"
    spread = f" ± {100 * std:.1f}" if len(values) > 1 else ""  # one seed has no spread to show
    return f"{100 * mean:.1f}{spread}{note}"


def render(done: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    seeds = range(args.seeds)
    lines = [
        f"Settings: HybridSN (`--model {args.model}`), patch {args.patch_size}, {args.pca_components} components, "
        f"{args.epochs} epochs, batch {args.batch_size}, lr {args.lr}; DnCNN depth {args.denoise_depth}, width "
        f"{args.denoise_width}, {args.denoise_steps} blind-spot steps of 16 crops of 40 x 40, band by band "
        f"(no neighbouring bands); {args.seeds} seeds (seed k: noise, split and initial weights). "
        "OA / AA as mean ± std over seeds, in %; (n=...) where fewer seeds were measured.", "",
    ]
    for protocol in PROTOCOLS:
        lines += [f"### {protocol}", "", "| noise | OA none | OA dncnn | OA mnf | AA none | AA dncnn | AA mnf |",
                  "|---|---|---|---|---|---|---|"]
        for condition in CONDITIONS:
            cells = {fe: [done[n] for s in seeds if (n := cell_name(condition, protocol, fe, s)) in done]
                     for fe in FRONT_ENDS}
            row = [_cell_text(cells[fe], "overall_accuracy", args.seeds) for fe in FRONT_ENDS]
            row += [_cell_text(cells[fe], "average_accuracy", args.seeds) for fe in FRONT_ENDS]
            lines.append(f"| {condition} | " + " | ".join(row) + " |")
        lines.append("")
    lines += ["### The denoiser against the clean cube", "",
              "Mean over bands of PSNR (dB, peak = the clean band's range) and SSIM (gaussian window, sigma 1.5); "
              "mean over seeds.", "",
              "| noise | PSNR noisy | PSNR denoised | SSIM noisy | SSIM denoised | DnCNN fit (s) | n |",
              "|---|---|---|---|---|---|---|"]
    for condition in CONDITIONS:
        q = [done[n] for s in seeds if (n := f"{condition.replace(':', '-')}__denoiser__seed{s}") in done]
        if not q:
            lines.append(f"| {condition} | " + " | ".join(["not measured"] * 5) + " | 0 |")
            continue
        mean = {k: statistics.fmean(r[k] for r in q) for k in
                ("noisy_psnr", "denoised_psnr", "noisy_ssim", "denoised_ssim", "train_seconds")}
        noisy_psnr = "∞ (identical)" if condition == "clean" else f"{mean['noisy_psnr']:.2f}"
        lines.append(f"| {condition} | {noisy_psnr} | {mean['denoised_psnr']:.2f} | {mean['noisy_ssim']:.4f} | "
                     f"{mean['denoised_ssim']:.4f} | {mean['train_seconds']:.1f} | {len(q)} |")
    controls = [done[n] for s in seeds if (n := f"control__disjoint-10__dncnn__seed{s}") in done]
    lines += ["", "### Noise control (disjoint-10, dncnn on, clean scene)", ""]
    if controls:
        oa = [c["overall_accuracy"] for c in controls]
        chance = max(v for k, v in controls[0].items() if k.startswith("chance_"))
        flagged = sum(bool(c["flagged"]) for c in controls)
        lines.append(f"OA on the noise cube {100 * statistics.fmean(oa):.1f} % (seeds: "
                     f"{', '.join(f'{100 * v:.1f}' for v in oa)}); chance (largest of the chance levels) "
                     f"{100 * chance:.1f} %; flagged above chance + margin in {flagged} of {len(controls)} seeds.")
    else:
        lines.append("not measured")
    seconds = [r["cell_seconds"] for r in done.values() if "cell_seconds" in r]
    lines += ["", f"{len(done)} result files; classification cells took {statistics.fmean(seconds):.0f} s on average "
              f"(median {statistics.median(seconds):.0f} s)." if seconds else ""]
    return "\n".join(lines)


def write_doc(path: Path, table: str) -> None:
    text = path.read_text() if path.is_file() else f"# Denoising\n\n{MARK_START}\n{MARK_END}\n"
    if MARK_START not in text or MARK_END not in text:
        text += f"\n{MARK_START}\n{MARK_END}\n"
    head, rest = text.split(MARK_START, 1)
    _, tail = rest.split(MARK_END, 1)
    atomic_write_text(path, f"{head}{MARK_START}\n{table}\n{MARK_END}{tail}")


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--model", default="hybridsn")
    parser.add_argument("--patch-size", type=int, default=11)
    parser.add_argument("--pca-components", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--denoise-depth", type=int, default=5)
    parser.add_argument("--denoise-width", type=int, default=24)
    parser.add_argument("--denoise-steps", type=int, default=300)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=os.environ.get("HSI_DATA_DIR", str(ROOT.parent / "shared" / "data")))
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "denoising_study")
    parser.add_argument("--markdown", type=Path, default=ROOT / "docs" / "denoising.md")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--deadline", help="UTC time HH:MM after which no new cell starts")
    args = parser.parse_args(argv)
    cells_dir = args.out / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    atomic_save_json(args.out / "settings.json", {**{k: str(v) for k, v in vars(args).items()},
                                                  "machine": platform.platform(), "cpus": os.cpu_count()})

    def load_done() -> dict[str, dict[str, Any]]:
        return {p.stem: json.loads(p.read_text()) for p in cells_dir.glob("*.json")}

    def out_of_time() -> bool:
        return bool(args.deadline) and time.strftime("%H:%M", time.gmtime()) >= args.deadline

    if not args.report_only:
        from hsi.experiments.steps import load_config_scene

        clean = load_config_scene(base_config(args, "clean", "per-class-10", "none", 0)).cube
        for seed in range(args.seeds):
            for condition in CONDITIONS:
                denoiser = None
                for protocol in PROTOCOLS:
                    for front_end in FRONT_ENDS:
                        name = cell_name(condition, protocol, front_end, seed)
                        if (cells_dir / f"{name}.json").is_file() or out_of_time():
                            continue
                        config = base_config(args, condition, protocol, front_end, seed)
                        quality_file = cells_dir / f"{condition.replace(':', '-')}__denoiser__seed{seed}.json"
                        if front_end == "dncnn" and denoiser is None:
                            denoiser, quality = denoiser_quality(config, clean)
                            atomic_save_json(quality_file, quality)
                            print(json.dumps({"denoiser": quality_file.stem, **quality}), flush=True)
                        result = run_cell(config, denoiser if front_end == "dncnn" else None)
                        atomic_save_json(cells_dir / f"{name}.json", result)
                        print(json.dumps({"cell": name, "oa": round(result["overall_accuracy"], 4),
                                          "seconds": round(result["cell_seconds"], 1)}), flush=True)
            name = f"control__disjoint-10__dncnn__seed{seed}"
            if not (cells_dir / f"{name}.json").is_file() and not out_of_time():
                result = run_cell(base_config(args, "clean", "disjoint-10", "dncnn", seed), None, control=True)
                atomic_save_json(cells_dir / f"{name}.json", result)
                print(json.dumps({"cell": name, "oa": round(result["overall_accuracy"], 4)}), flush=True)
    write_doc(args.markdown, render(load_done(), args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
