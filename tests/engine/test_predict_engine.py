"""Tiled `predict` on an engine: one tile function for both engines, refusals, and on a real two-node Ray cluster
(tests marked ``ray``) the same outputs as `--engine local`, pixel for pixel.

The cube is the synthetic scene (30 x 26 x 24) as a georeferenced GeoTIFF, its top-left 3 x 4 pixels
zero (outside the data); tiles of 7 pixels divide neither side. Two checkpoints: a small HybridSN
(patches of 5) and a centre-pixel SVM behind a small DnCNN front end, which reads 3 pixels around
each pixel, so a window carries more than the model's halo.
"""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import Affine

from hsi.cli.main import main
from hsi.experiments import engine as engine_module

MODELS = {
    "hybridsn": ["--model", "hybridsn", "--patch-size", "5", "--pca-components", "13", "--epochs", "1"],
    "svm_dncnn": ["--model", "svm", "--pca-components", "5", "--denoise", "dncnn", "--denoise-depth", "3",
                  "--denoise-width", "4", "--denoise-steps", "5"],
}
TILE = "7"


@pytest.fixture(scope="module")
def tiled_cube(synthetic_scene: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic scene as a GeoTIFF (UTM 11 N, 30 m pixels), read window by window by `predict`."""
    cube = np.load(synthetic_scene.cube_npy)
    cube[:3, :4] = 0
    path = tmp_path_factory.mktemp("cube") / "scene.tif"
    height, width, bands = cube.shape
    with rasterio.open(path, "w", driver="GTiff", height=height, width=width, count=bands, dtype=cube.dtype,
                       crs="EPSG:32611", transform=Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4100000.0)) as tif:
        tif.write(cube.transpose(2, 0, 1))
    return path


@pytest.fixture(scope="module")
def checkpoints(synthetic_scene: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run folders of the two models, trained on the synthetic scene."""
    out, runs = tmp_path_factory.mktemp("runs"), {}
    for name, flags in MODELS.items():
        assert main(["train", *synthetic_scene.args(), *flags, "--out", str(out / name), "--device", "cpu",
                     "--quiet"]) == 0
        (runs[name],) = (out / name).iterdir()
    return runs


def _predict_argv(checkpoint: Path, cube: Path, out: Path, *extra: str) -> list[str]:
    return ["predict", "--checkpoint", str(checkpoint), "--cube", str(cube), "--out", str(out), "--device", "cpu",
            "--tile-size", TILE, "--quiet", *extra]


def _output(out: Path) -> Path:
    (folder,) = [p for p in out.iterdir() if not p.name.startswith(".")]
    return folder


def test_predict_engine_ray_without_ray_installed_is_one_line_and_exit_2(
    checkpoints: dict[str, Path], tiled_cube: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as when it is missing
    assert main(_predict_argv(checkpoints["svm_dncnn"], tiled_cube, tmp_path / "out", "--engine", "ray")) == 2
    assert capsys.readouterr().err.strip() == (
        "hsi-classify: error: --engine ray needs Ray, which is not installed here: pip install 'hsi-classify[ray]' "
        "(or use --engine local).")
    assert not (tmp_path / "out").exists()


def test_predict_engine_ray_on_a_scene_read_whole_is_refused_in_one_line(
    checkpoints: dict[str, Path], synthetic_scene: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "ray", types.ModuleType("ray"))  # installed (nothing connects before the refusal)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert main(["predict", "--checkpoint", str(checkpoints["svm_dncnn"]), *synthetic_scene.args(), "--out",
                 str(tmp_path / "out"), "--engine", "ray", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--engine ray classifies a cube tile by tile" in err and "without --gt" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_cluster_that_cannot_run_a_tile_stops_predict_and_keeps_its_finished_tiles(
    checkpoints: dict[str, Path], tiled_cube: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cluster's failure is not the input's: the partial folder (here: 2 tiles done locally) survives it."""
    import hsi.evaluation.predict as evaluation_predict
    from hsi.experiments.engine import ClusterUnavailableError, RayEngine
    from hsi.experiments.predict import PredictSettings, SceneToClassify, predict_run

    real, calls = evaluation_predict.predict_window, []

    def interrupted_after_two(*args: Any, **kwargs: Any) -> np.ndarray:
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation_predict, "predict_window", interrupted_after_two)
    scene, settings = SceneToClassify(cube=str(tiled_cube)), PredictSettings(device="cpu", tile_size=int(TILE))
    with pytest.raises(KeyboardInterrupt):
        predict_run(checkpoints["svm_dncnn"], scene, out=tmp_path, settings=settings)
    ray = types.ModuleType("ray")  # a cluster of one alive node without GPUs
    ray.is_initialized = lambda: False  # type: ignore[attr-defined]
    ray.init = lambda **kwargs: None  # type: ignore[attr-defined]
    ray.shutdown = lambda: None  # type: ignore[attr-defined]
    ray.nodes = lambda: [{"Alive": True, "Resources": {"CPU": 4.0}}]  # type: ignore[attr-defined]
    ray.exceptions = types.SimpleNamespace()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ray", ray)
    with pytest.raises(ClusterUnavailableError, match="each task asks for 1 GPU"):
        predict_run(checkpoints["svm_dncnn"], scene, out=tmp_path, settings=settings,
                    engine=RayEngine(address="127.0.0.2:1", gpus_per_run=1.0))
    (work,) = tmp_path.iterdir()
    assert work.name.endswith(".partial") and json.loads((work / "progress.json").read_text())["done"] == [0, 1]


def test_a_worker_builds_the_model_once_and_classifies_each_tile_as_the_driver_does(
    checkpoints: dict[str, Path], tiled_cube: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The Ray task's path (checkpoint in, classifier built and cached in the worker) against the local one."""
    import hsi.training.factory as classifier_module
    from hsi.data.lazy import open_lazy_cube
    from hsi.evaluation.predict import tile_grid
    from hsi.experiments import predict as predict_module
    from hsi.experiments.engine import LocalEngine
    from hsi.experiments.predict import TileModel, classify_tiles, read_tile_window
    from hsi.training.checkpoint import load_run_model

    checkpoint = load_run_model(checkpoints["svm_dncnn"])
    cpu = torch.device("cpu")
    classifier = classifier_module.classifier_from_state(checkpoint.classifier_state, cpu)
    cube = open_lazy_cube(tiled_cube)
    windows = [read_tile_window(t, cube, checkpoint, halo=0) for t in tile_grid(30, 26, int(TILE))]
    settings = {"nan_policy": "error", "batch_size": None, "inference": "patches", "probabilities": True}
    here = {f.result.tile.index: f.result for f in classify_tiles(LocalEngine(), windows, checkpoint=checkpoint,
                                                                  classifier=classifier, device=cpu,
                                                                  settings=settings)}
    builds: list[int] = []
    real = classifier_module.classifier_from_state
    monkeypatch.setattr(predict_module, "classifier_from_state", lambda *a, **k: builds.append(1) or real(*a, **k))
    monkeypatch.setattr(engine_module, "_WORKER", {})  # a fresh worker process
    model = TileModel("key", checkpoint, settings)  # no classifier: as a Ray task receives it
    for window in windows:
        result = predict_module._classify_tile(model, window)
        np.testing.assert_array_equal(result.ids, here[window.tile.index].ids)
        np.testing.assert_array_equal(result.proba, here[window.tile.index].proba)
        assert result.ids.dtype == np.uint16 and result.proba is not None and result.proba.dtype == np.uint8
    assert len(builds) == 1 and len(here) == len(windows) == 20
    assert (here[0].ids[:3, :4] == 0).all() and (here[0].ids[3:] > 0).all()  # outside the data: 0


# ---------------------------------------------------------------- on a real two-node Ray cluster


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _rasters(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: rasterio.open(p).read() for p in sorted(folder.glob("*.tif"))}


@pytest.mark.ray
@pytest.mark.parametrize(("model", "extra"), [("hybridsn", ()), ("svm_dncnn", ("--probabilities",))])
def test_ray_predict_on_two_nodes_equals_the_local_one_pixel_for_pixel(
    ray_cluster: Any, checkpoints: dict[str, Path], tiled_cube: Path, tmp_path: Path, model: str,
    extra: tuple[str, ...],
) -> None:
    """20 tiles, 1 CPU per tile task on each of two 1-CPU nodes; the local run on the one torch thread a task has."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(_predict_argv(checkpoints[model], tiled_cube, tmp_path / "local", *extra)) == 0
    finally:
        torch.set_num_threads(threads)
    argv = [sys.executable, "-m", "hsi", *_predict_argv(checkpoints[model], tiled_cube, tmp_path / "ray", *extra),
            "--engine", "ray", "--ray-address", ray_cluster.address]
    done = subprocess.run(argv, env=ray_cluster.env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    local, ray = _output(tmp_path / "local"), _output(tmp_path / "ray")
    assert _files(ray) == _files(local)
    assert "prediction.tif" in _files(ray) and ("probabilities.tif" in _files(ray)) == bool(extra)
    ids = np.load(ray / "prediction.npy")
    np.testing.assert_array_equal(ids, np.load(local / "prediction.npy"))
    assert len(np.unique(ids)) > 2 and (ids[:3, :4] == 0).all()
    rasters = _rasters(ray)
    for name, pixels in _rasters(local).items():  # prediction.tif (+ probabilities.tif, confidence.tif)
        np.testing.assert_array_equal(rasters[name], pixels, err_msg=name)
    record = json.loads((ray / "prediction.json").read_text())
    assert record["engine"] == {"engine": "ray", "address": ray_cluster.address, "gpus_per_run": 0.0,
                                "cpus_per_run": 1, "max_retries": 3, "retries": 0}
    assert record["n_tiles"] == 20 and record["tiled"]
    assert json.loads((local / "prediction.json").read_text())["engine"] == {"engine": "local", "jobs": 1,
                                                                              "retries": 0}
    assert not list((tmp_path / "ray").glob(".predict_*"))  # the working folder is gone once the output is complete
