"""The denoising front-end: fitted without labels, stored in the checkpoint, applied again by `predict`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.ndimage

from hsi._core.errors import CheckpointError
from hsi.cli.main import main
from hsi.data.corrupt import corrupt_cube
from hsi.features.pca import SpectralPCA
from hsi.training.checkpoint import RunModel, load_run_model
from hsi.training.denoise_fit import Denoiser, DenoiseSettings, fit_denoiser
from hsi.training.frontend import apply_features, frontend_radius

# The pipeline test writes every figure as a bare PNG signature (what they show is tested elsewhere).
pytestmark = pytest.mark.usefixtures("figures_not_drawn")

TINY = DenoiseSettings(depth=3, width=8, steps=30, batch_size=8, crop=16, lr=5e-3, seed=0)


def _front_end(pca: SpectralPCA, denoiser: dict[str, Any] | None) -> RunModel:
    """A run model of 4 bands that holds a front end only (what apply_features reads); the rest is filler."""
    return RunModel(classifier_state={}, pca=pca.state_dict(), denoiser=denoiser, class_ids=(1,), class_names=("a",),
                    palette=("#000000",), scene_name="s", n_bands=4, rgb_bands=(0, 1, 2), wavelengths=None,
                    pad_mode="reflect", config={})


@pytest.fixture(scope="module")
def smooth_and_noisy() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    clean = np.stack([scipy.ndimage.gaussian_filter(rng.standard_normal((24, 24)), 2.5) for _ in range(4)], -1)
    clean = (clean / clean.std() * 10 + 50).astype(np.float32)
    return clean, (clean + rng.normal(0, 5, clean.shape)).astype(np.float32)


def test_blind_spot_denoiser_removes_noise_without_a_clean_reference(smooth_and_noisy: Any) -> None:
    clean, noisy = smooth_and_noisy
    denoiser = fit_denoiser(noisy, TINY)  # sees only the noisy cube
    denoised = denoiser.apply(noisy)
    assert denoised.shape == noisy.shape and denoised.dtype == np.float32
    assert np.mean((denoised - clean) ** 2) < 0.6 * np.mean((noisy - clean) ** 2)
    assert denoiser.train_seconds > 0


def test_denoiser_is_seeded_and_survives_its_state(smooth_and_noisy: Any) -> None:
    _, noisy = smooth_and_noisy
    settings = DenoiseSettings(depth=3, width=4, steps=5, batch_size=2, crop=8, seed=1)
    first, again = fit_denoiser(noisy, settings), fit_denoiser(noisy, settings)
    out = first.apply(noisy)
    assert np.array_equal(out, again.apply(noisy))
    assert np.array_equal(Denoiser.from_state(first.state()).apply(noisy), out)


def test_a_checkpoint_with_a_front_end_refuses_other_band_counts(smooth_and_noisy: Any) -> None:
    _, noisy = smooth_and_noisy
    denoiser = fit_denoiser(noisy, DenoiseSettings(depth=2, width=4, steps=1, batch_size=1, crop=8))
    checkpoint = _front_end(SpectralPCA(2).fit(noisy.reshape(-1, 4)), denoiser.state())
    assert apply_features(checkpoint, noisy).shape == (24, 24, 2)
    with pytest.raises(CheckpointError, match="fitted on 4-band cubes; got a cube of shape \\(24, 24, 3\\)") as info:
        apply_features(checkpoint, noisy[:, :, :3])
    assert "\n" not in str(info.value)


def test_train_with_dncnn_then_predict_reproduces_the_map(synthetic_scene: Any, tmp_path: Path) -> None:
    """train --corrupt --denoise dncnn --reduce mnf, then predict on the same noisy copy: the same map."""
    spec, seed = "gaussian:0.3", 0
    code = main([
        "train", "--cube", str(synthetic_scene.cube_npy), "--gt", str(synthetic_scene.gt_npy), "--corrupt", spec,
        "--denoise", "dncnn", "--denoise-depth", "3", "--denoise-width", "8", "--denoise-steps", "20",
        "--reduce", "mnf", "--model", "svm", "--pca-components", "8", "--patch-size", "5",
        "--train-ratio", "0.2", "--out", str(tmp_path / "runs"), "--quiet", "--seed", str(seed),
    ])
    assert code == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    config = json.loads((run_dir / "config.json").read_text())["run"]
    assert (config["corrupt"], config["denoise"], config["reduce"]) == ([spec], "dncnn", "mnf")
    assert "denoiser" in json.loads((run_dir / "model.json").read_text())
    noisy = corrupt_cube(np.load(synthetic_scene.cube_npy).astype(np.float32), [spec], seed=seed)
    np.save(tmp_path / "noisy.npy", noisy)  # the same noisy copy, as a user would have it on disk
    code = main(["predict", "--checkpoint", str(run_dir), "--cube", str(tmp_path / "noisy.npy"),
                 "--out", str(tmp_path / "pred"), "--quiet"])
    assert code == 0
    (pred_dir,) = (tmp_path / "pred").iterdir()
    assert np.array_equal(np.load(pred_dir / "prediction.npy"), np.load(run_dir / "prediction.npy"))
    # The front-end matters: without its denoiser the features differ, so predict had to apply it.
    checkpoint = load_run_model(run_dir)
    with_denoiser = apply_features(checkpoint, noisy)
    without = apply_features(dataclasses.replace(checkpoint, denoiser=None), noisy)
    assert np.abs(with_denoiser - without).mean() > 0.05 * np.abs(without).mean()


def test_a_damaged_denoiser_entry_is_a_checkpoint_error(smooth_and_noisy: Any) -> None:
    _, noisy = smooth_and_noisy
    state = fit_denoiser(noisy, DenoiseSettings(depth=2, width=4, steps=1, batch_size=1, crop=8)).state()
    state["weights"].pop(next(iter(state["weights"])))
    checkpoint = _front_end(SpectralPCA(2).fit(noisy.reshape(-1, 4)), state)
    with pytest.raises(CheckpointError, match="denoiser entry is incomplete"):
        apply_features(checkpoint, noisy)


def test_the_run_caption_names_the_front_end() -> None:
    from hsi.config import RunConfig
    from hsi.reporting.run_report import run_caption

    caption = run_caption("salinas_a", RunConfig(corrupt=["gaussian:0.1"], denoise="dncnn", reduce="mnf"))
    assert caption.endswith("corrupted by gaussian:0.1, dncnn denoiser, MNF")
    assert run_caption("salinas_a", RunConfig()).endswith("30% training")


def test_the_front_end_radius_is_the_denoisers_reach(smooth_and_noisy: Any) -> None:
    _, noisy = smooth_and_noisy
    denoiser = fit_denoiser(noisy, DenoiseSettings(depth=3, width=4, steps=1, batch_size=1, crop=8))
    pca = SpectralPCA(2).fit(noisy.reshape(-1, 4))
    checkpoint = _front_end(pca, denoiser.state())
    assert frontend_radius(_front_end(pca, None)) == 0 and frontend_radius(checkpoint) == 3
    # A pixel 3 steps away changes the centre's features; one 4 steps away does not.
    base = apply_features(checkpoint, noisy)
    for distance, changes in ((3, True), (4, False)):
        moved = noisy.copy()
        moved[12 + distance, 12] += 100.0
        assert (np.abs(apply_features(checkpoint, moved)[12, 12] - base[12, 12]).max() > 1e-6) == changes
