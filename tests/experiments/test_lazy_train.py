"""`train` on a cube read window by window (--lazy): the same PCA, patches and metrics as in memory.

Every scene here is SYNTHETIC: a small cube of class means plus noise written to tmp as .npy
(and as a BIL ENVI file), with a labelled ground truth.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hsi._core.errors import ConfigError
from hsi._core.registry import Entry
from hsi.config import RunConfig
from hsi.data import lazy
from hsi.data.lazy import gather_mosaic, open_lazy_cube
from hsi.data.patches import PatchSource
from hsi.data.scene import lazy_decision, load_custom_scene, load_lazy_scene
from hsi.experiments.steps import lazy_mode, prepare, prepare_lazy, reduce
from hsi.experiments.train import train_run
from hsi.features.pca import SpectralPCA, fit_sample
from hsi.training.recipe import RECIPES, Recipe

H, W, B, K = 30, 26, 12, 4


def _synthetic_arrays(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gt = np.zeros((H, W), dtype=np.uint8)
    gt[1:29, 0:24] = rng.integers(1, K + 1, (28, 24))  # labels touch the top-left and left borders
    cube = rng.normal(size=(H, W, B)).astype(np.float32) * 3 + rng.normal(size=(K + 1, B)).astype(np.float32)[gt]
    return cube, gt


@pytest.fixture
def synthetic_files(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    """A SYNTHETIC cube (.npy) and ground truth (.npy) in tmp; returns their paths and the cube."""
    cube, gt = _synthetic_arrays()
    np.save(tmp_path / "synthetic_cube.npy", cube)
    np.save(tmp_path / "synthetic_gt.npy", gt)
    return tmp_path / "synthetic_cube.npy", tmp_path / "synthetic_gt.npy", cube


def _config(cube: Path, gt: Path, out: Path, **kwargs: object) -> RunConfig:
    values: dict[str, object] = {"cube": str(cube), "gt": str(gt), "pca_components": 5, "patch_size": 5,
                                 "model": "random_forest", "epochs": 1, "out": str(out), "device": "cpu"}
    return RunConfig(**{**values, **kwargs})  # type: ignore[arg-type]


def test_synthetic_gather_reads_the_pixels_in_order(synthetic_files, monkeypatch) -> None:
    cube_path, _, cube = synthetic_files
    monkeypatch.setattr(lazy, "_STRIP_BYTES", W * B * 4 * 3)  # strips of 3 rows: many strips
    rng = np.random.default_rng(1)
    rows, cols = rng.integers(0, H, 200), rng.integers(0, W, 200)
    np.testing.assert_array_equal(open_lazy_cube(cube_path).gather(rows, cols), cube[rows, cols])


@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
@pytest.mark.parametrize("block_size", [1, 4, None])
def test_synthetic_mosaic_patches_equal_the_in_memory_patches(synthetic_files, pad_mode, block_size) -> None:
    cube_path, _, cube = synthetic_files
    p = 7
    rng = np.random.default_rng(2)
    mask = rng.random((H, W)) < 0.3
    mask[0, 0] = mask[H - 1, W - 1] = mask[0, W - 1] = mask[H - 1, 5] = True  # corners and edges
    rows, cols = np.nonzero(mask)
    mosaic = gather_mosaic(open_lazy_cube(cube_path), rows, cols, patch_size=p, pad_mode=pad_mode,
                           transform=lambda raw, origin: raw.astype(np.float32) * 2, block_size=block_size)
    lazily = mosaic.source(patch_size=p).gather(torch.from_numpy(mosaic.rows), torch.from_numpy(mosaic.cols))
    whole = PatchSource(cube * 2, patch_size=p, pad_mode=pad_mode)
    expected = whole.gather(torch.from_numpy(rows.astype(np.int64)), torch.from_numpy(cols.astype(np.int64)))
    torch.testing.assert_close(lazily, expected, rtol=0, atol=0)


def test_synthetic_mosaic_from_a_bil_envi_cube(tmp_path) -> None:
    cube, _ = _synthetic_arrays()
    stored = np.round(cube * 100).astype("<i2")
    (tmp_path / "synthetic.hdr").write_text(
        f"ENVI\nsamples = {W}\nlines = {H}\nbands = {B}\nheader offset = 0\nfile type = ENVI Standard\n"
        "data type = 2\ninterleave = bil\nbyte order = 0\n")
    (tmp_path / "synthetic.img").write_bytes(stored.transpose(0, 2, 1).tobytes())
    envi = open_lazy_cube(tmp_path / "synthetic.hdr")
    rows, cols = np.array([0, 5, 29, 17]), np.array([0, 25, 3, 12])
    np.testing.assert_array_equal(envi.gather(rows, cols), stored[rows, cols])
    mosaic = gather_mosaic(envi, rows, cols, patch_size=5, pad_mode="reflect",
                           transform=lambda raw, origin: raw.astype(np.float32))
    got = mosaic.source(patch_size=5).gather(torch.from_numpy(mosaic.rows), torch.from_numpy(mosaic.cols))
    want = PatchSource(stored.astype(np.float32), patch_size=5, pad_mode="reflect").gather(
        torch.from_numpy(rows), torch.from_numpy(cols))
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_synthetic_lazy_pca_equals_in_memory_pca_when_the_sample_covers_the_pixels(synthetic_files, tmp_path) -> None:
    cube_path, gt_path, _ = synthetic_files
    config = _config(cube_path, gt_path, tmp_path / "runs")
    in_memory = prepare(config)
    on_disk = prepare_lazy(config, "test")
    np.testing.assert_array_equal(in_memory.split.train, on_disk.split.train)
    a, b = reduce(in_memory.config, in_memory.scene, in_memory.split), reduce(on_disk.config, on_disk.scene,
                                                                              on_disk.split)
    assert b.cube is None and a.fit_pixels == b.fit_pixels == int(in_memory.split.train.sum())
    np.testing.assert_array_equal(a.pca.components_, b.pca.components_)
    np.testing.assert_array_equal(a.pca.mean_, b.pca.mean_)


def test_synthetic_lazy_pca_subsample_is_seeded_and_is_the_in_memory_one(synthetic_files, tmp_path) -> None:
    cube_path, gt_path, cube = synthetic_files
    config = _config(cube_path, gt_path, tmp_path / "runs", pca_sample_pixels=50, split_seed=3)
    prepared = prepare_lazy(config, "test")
    features = reduce(prepared.config, prepared.scene, prepared.split)
    assert features.fit_pixels == 50
    pixels = cube[prepared.split.train]
    keep = fit_sample(len(pixels), 50, 3)
    assert keep is not None and len(keep) == 50
    expected = SpectralPCA(5, seed=3).fit(pixels[keep])
    np.testing.assert_array_equal(features.pca.components_, expected.components_)
    in_memory = prepare(config)  # the in-memory run draws the same sample
    np.testing.assert_array_equal(reduce(in_memory.config, in_memory.scene, in_memory.split).pca.components_,
                                  expected.components_)


@pytest.mark.parametrize("sample", [100, 10_000])
def test_synthetic_lazy_pca_fit_all_equals_in_memory(synthetic_files, tmp_path, sample) -> None:
    cube_path, gt_path, _ = synthetic_files
    config = _config(cube_path, gt_path, tmp_path / "runs", pca_fit="all", pca_sample_pixels=sample)
    a, b = prepare(config), prepare_lazy(config, "test")
    fa, fb = reduce(a.config, a.scene, a.split), reduce(b.config, b.scene, b.split)
    assert fa.fit_pixels == fb.fit_pixels == min(sample, H * W)
    np.testing.assert_array_equal(fa.pca.components_, fb.pca.components_)


@pytest.mark.parametrize("model", ["random_forest", "resnet"])
def test_synthetic_lazy_train_writes_the_metrics_of_the_in_memory_run(synthetic_files, tmp_path, model) -> None:
    cube_path, gt_path, _ = synthetic_files
    settings = {"model": model, "pad_mode": "reflect", "batch_size": 64}
    lazily = train_run(_config(cube_path, gt_path, tmp_path / "on", lazy="on", **settings), progress=False)
    at_once = train_run(_config(cube_path, gt_path, tmp_path / "off", lazy="off", **settings), progress=False)
    assert lazily.metrics["overall_accuracy"] == at_once.metrics["overall_accuracy"]
    assert lazily.metrics["confusion_matrix"] == at_once.metrics["confusion_matrix"]
    ids, labels = np.load(lazily.run_dir / "prediction.npy"), np.load(at_once.run_dir / "prediction.npy")
    np.testing.assert_array_equal(ids, labels)  # every pixel, from the streamed map
    metrics = json.loads((lazily.run_dir / "metrics.json").read_text())
    assert metrics["lazy"] is True and metrics["pca_sample_pixels"] == 200_000
    assert metrics["pca_fit_pixels"] == metrics["n_train"] + metrics["n_val"]
    config = json.loads((lazily.run_dir / "config.json").read_text())
    assert config["run"]["lazy"] == "on" and config["resolved"]["lazy"]["on"] is True
    assert json.loads((at_once.run_dir / "config.json").read_text())["run"]["lazy"] == "off"
    for name in ("map.png", "report.md", "model.json", "split_test.npy"):
        assert (lazily.run_dir / name).is_file()
    assert not (lazily.run_dir / ".stream").exists()


def test_synthetic_lazy_auto_follows_the_memory_available(synthetic_files, monkeypatch) -> None:
    cube_path, _, _ = synthetic_files
    monkeypatch.setenv("HSI_AVAILABLE_MEMORY", "1G")
    assert lazy_decision(cube_path, None, "auto")[0] is False
    monkeypatch.setenv("HSI_AVAILABLE_MEMORY", str(H * W * B * 4 * 2))  # a quarter of it is less than the cube
    on, reason = lazy_decision(cube_path, None, "auto")
    assert on and "available memory" in reason
    assert lazy_decision(cube_path, None, "off")[0] is False


def test_synthetic_small_hdf5_cube_is_read_window_by_window_under_auto(synthetic_files, tmp_path) -> None:
    import h5py

    _, _, cube = synthetic_files
    with h5py.File(tmp_path / "synthetic.h5", "w") as f:
        f["cube"] = cube
    on, reason = lazy_decision(tmp_path / "synthetic.h5", None, "auto")  # small, but no in-memory reader takes it
    assert on and "window by window only" in reason


def test_synthetic_lazy_refusals_write_nothing(synthetic_files, tmp_path, monkeypatch) -> None:
    cube_path, gt_path, cube = synthetic_files
    out = tmp_path / "runs"
    with pytest.raises(ConfigError, match=r"--denoise dncnn .* needs the whole cube"):
        train_run(_config(cube_path, gt_path, out, lazy="on", denoise="dncnn"), progress=False)
    with pytest.raises(ConfigError, match="--reduce mnf"):
        train_run(_config(cube_path, gt_path, out, lazy="on", reduce="mnf"), progress=False)
    with pytest.raises(ConfigError, match=r"--self-training .* needs the whole cube"):
        train_run(_config(cube_path, gt_path, out, lazy="on", self_training=1), progress=False)
    # A recipe's own value of a whole-cube part is refused as a flag's is (the check reads the resolved recipe).
    monkeypatch.setitem(RECIPES._entries, "self-taught", Entry("self-taught", Recipe(self_training=1), "test"))
    with pytest.raises(ConfigError, match=r"--self-training .* needs the whole cube"):
        train_run(_config(cube_path, gt_path, out, lazy="on", recipe="self-taught"), progress=False)
    with pytest.raises(ConfigError, match="--dataset"):
        lazy_mode(RunConfig(dataset="salinas_a", lazy="on", out=str(out)))
    from scipy.io import savemat

    savemat(tmp_path / "synthetic.mat", {"cube": cube})
    with pytest.raises(ConfigError, match="window by window"):
        lazy_decision(tmp_path / "synthetic.mat", None, "on")
    assert not out.exists() or not any(out.iterdir())


def test_synthetic_lazy_scene_matches_the_custom_scene(synthetic_files) -> None:
    cube_path, gt_path, _ = synthetic_files
    on_disk, in_memory = load_lazy_scene(cube_path, gt_path), load_custom_scene(cube_path, gt_path)
    assert on_disk.shape == in_memory.shape and on_disk.class_ids == in_memory.class_ids
    np.testing.assert_array_equal(on_disk.labels, in_memory.labels)
