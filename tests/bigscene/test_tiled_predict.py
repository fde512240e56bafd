"""`predict` on a cube read window by window: tiled == whole scene, GeoTIFF output, resume, refusals."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch

import hsi.evaluation.predict as evaluation_predict
from hsi.cli.main import main
from hsi.data.patches import PatchSource
from hsi.evaluation.predict import predict_scene
from hsi.training.checkpoint import load_run_model
from hsi.training.factory import classifier_from_state
from hsi.training.frontend import apply_features

from .conftest import TRANSFORM, write_envi


def _whole_scene_ids(run_dir: Path, cube: np.ndarray, voters: np.ndarray | None = None) -> np.ndarray:
    """The class ids of the whole scene classified at once, in memory (today's path), smoothed as the run says
    with ``voters`` voting."""
    checkpoint = load_run_model(run_dir)
    classifier = classifier_from_state(checkpoint.classifier_state, torch.device("cpu"))
    source = PatchSource(apply_features(checkpoint, cube.astype(np.float32)), patch_size=classifier.receptive_field,
                         pad_mode=checkpoint.pad_mode)
    labels = checkpoint.post_processing.apply(predict_scene(classifier, source), n_classes=checkpoint.n_classes,
                                              voters=voters)
    return np.asarray(checkpoint.class_ids)[labels]


def _predict(run_dir: Path, cube: Path, out: Path, *extra: str) -> Path:
    assert main(["predict", "--checkpoint", str(run_dir), "--cube", str(cube), "--out", str(out), "--device", "cpu",
                 "--quiet", *extra]) == 0
    (folder,) = [p for p in out.iterdir() if not p.name.startswith(".")]
    return folder


@pytest.mark.parametrize(("model", "tile_size"), [("hybridsn", 16), ("svm", 12), ("svm_dncnn", 12),
                                                  ("svm_smooth", 12), ("svm_smooth", 7)])
def test_tiled_prediction_equals_whole_scene_pixel_for_pixel(
    model: str, tile_size: int, trained: dict[str, Path], synthetic_envi: Path, synthetic_scene: Any, tmp_path: Path,
) -> None:
    """30 x 26 pixels in tiles of 16 or 12 (neither divides a side): edge tiles, halos and scene edges all matter."""
    folder = _predict(trained[model], synthetic_envi, tmp_path, "--tile-size", str(tile_size))
    tiled = np.load(folder / "prediction.npy")
    cube = np.load(synthetic_scene.cube_npy)
    cube[:3, :4] = 0
    inside = np.ones(tiled.shape, dtype=bool)
    inside[:3, :4] = False
    whole = _whole_scene_ids(trained[model], cube, voters=inside)  # pixels outside the data do not vote
    assert len(np.unique(whole)) > 1
    assert (tiled[:3, :4] == 0).all()  # outside the data: nodata
    np.testing.assert_array_equal(tiled[inside], whole[inside])
    record = json.loads((folder / "prediction.json").read_text())
    assert record["smooth"] == (5 if model == "svm_smooth" else 0)
    if model == "svm_smooth":  # the same SVM as "svm": the vote changed classes, and tiles did as the whole did
        assert (whole[inside] != _whole_scene_ids(trained["svm"], cube)[inside]).sum() >= 5
        with rasterio.open(folder / "prediction.tif") as tif:  # the GeoTIFF holds the smoothed classes
            np.testing.assert_array_equal(tif.read(1), tiled)
    assert record["tiled"] and record["n_tiles"] == -(-30 // tile_size) * -(-26 // tile_size)
    assert not list(tmp_path.glob(".predict_*"))  # the working folder is gone once the output is complete


def test_prediction_tif_carries_the_crs_transform_classes_and_colours(
    trained: dict[str, Path], synthetic_envi: Path, tmp_path: Path,
) -> None:
    folder = _predict(trained["svm"], synthetic_envi, tmp_path, "--tile-size", "16", "--probabilities")
    ids = np.load(folder / "prediction.npy")
    with rasterio.open(folder / "prediction.tif") as tif:
        assert tif.crs.to_epsg() == 32611
        assert tuple(tif.transform)[:6] == pytest.approx(TRANSFORM)
        assert tif.nodata == 0 and tif.profile["tiled"] and tif.compression.name.lower() == "deflate"
        np.testing.assert_array_equal(tif.read(1), ids)
        assert tif.tags(1) == {"class_2": "class 2", "class_3": "class 3", "class_5": "class 5", "class_9": "class 9"}
        assert tif.colormap(1)[0][3] == 0 and tif.colormap(1)[2][3] == 255
    assert "<Category>class 9</Category>" in (folder / "prediction.tif.aux.xml").read_text()
    with rasterio.open(folder / "probabilities.tif") as probabilities, rasterio.open(folder / "confidence.tif") as conf:
        assert probabilities.count == 4 and probabilities.crs.to_epsg() == 32611
        assert probabilities.nodata == 255 and conf.nodata == 255  # every GeoTIFF says which value is no data
        p = probabilities.read()
        np.testing.assert_array_equal(conf.read(1), p.max(axis=0))
    class_of = np.searchsorted([2, 3, 5, 9], ids)
    inside = ids > 0
    assert not inside.all() and (p[:, ~inside] == 255).all() and (p[:, inside] <= 254).all()
    assert np.abs(p[:, inside].astype(int).sum(axis=0) - 254).max() <= 4  # p x 254, rounded per class
    assert (p.argmax(axis=0)[inside] == class_of[inside]).mean() > 0.95  # uint8 rounding may tie close classes
    assert (folder / "map.png").is_file() and (folder / "report.html").is_file()


def test_an_interrupted_prediction_resumes_without_redoing_finished_tiles(
    trained: dict[str, Path], synthetic_envi: Path, synthetic_scene: Any, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = evaluation_predict.predict_window
    calls: list[int] = []

    def failing_after_two(*args: Any, **kwargs: Any) -> np.ndarray:
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a Ctrl-C (or a kill) in the middle of the third tile
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation_predict, "predict_window", failing_after_two)
    args = ["predict", "--checkpoint", str(trained["svm"]), "--cube", str(synthetic_envi), "--out",
            str(tmp_path / "out"), "--device", "cpu", "--quiet", "--tile-size", "15"]
    assert main(args) != 0  # the CLI reports the interruption
    (work,) = (tmp_path / "out").iterdir()
    assert work.name.startswith(".predict_synthetic_") and work.name.endswith(".partial")  # no output folder yet
    assert json.loads((work / "progress.json").read_text())["done"] == [0, 1]

    calls.clear()
    monkeypatch.setattr(evaluation_predict, "predict_window", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert main(args) == 0
    assert len(calls) == 4 - 2  # 2 x 2 tiles, two done before
    (folder,) = (tmp_path / "out").iterdir()
    cube = np.load(synthetic_scene.cube_npy)
    cube[:3, :4] = 0
    expected = _whole_scene_ids(trained["svm"], cube)
    expected[:3, :4] = 0
    np.testing.assert_array_equal(np.load(folder / "prediction.npy"), expected)


def test_band_count_and_wavelength_mismatches_are_refused_in_one_line(
    trained: dict[str, Path], synthetic_scene: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from hsi._core.errors import CheckpointError
    from hsi.experiments.predict import check_cube_fits

    cube = np.load(synthetic_scene.cube_npy)[:, :, :20]
    header = write_envi(tmp_path, cube, "twenty", wavelengths=None)
    assert main(["predict", "--checkpoint", str(trained["svm"]), "--cube", str(header), "--out",
                 str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "24-band cubes" in err and "got a cube with 20 bands" in err
    assert load_run_model(trained["svm"]).wavelengths[:2] == (400.0, 420.0)  # its ENVI header's
    shifted = write_envi(tmp_path, np.load(synthetic_scene.cube_npy), "shifted",
                         wavelengths=tuple(415.0 + 20.0 * k for k in range(24)))
    assert main(["predict", "--checkpoint", str(trained["svm"]), "--cube", str(shifted), "--out",
                 str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "band 0 is at 400.0 nm" in err and "is at 415.0 nm" in err
    assert main(["predict", "--checkpoint", str(trained["svm"]), *synthetic_scene.args(), "--tile-size", "8",
                 "--out", str(tmp_path / "out"), "--quiet"]) == 2  # a scored scene is read whole
    assert "--tile-size and --probabilities apply to a cube classified tile by tile" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    checkpoint = dataclasses.replace(load_run_model(trained["svm"]), scene_name="s", n_bands=3,
                                     wavelengths=(400.0, 410.0, 420.0))
    check_cube_fits(checkpoint, 3, (401.0, 411.0, 419.0), "c")  # within half a band: the same sensor
    check_cube_fits(checkpoint, 3, None, "c")  # the cube does not say: nothing to compare
    with pytest.raises(CheckpointError, match=r"band 1 is at 410.0 nm; cube c's is at 430.0 nm"):
        check_cube_fits(checkpoint, 3, (400.0, 430.0, 440.0), "c")


def test_each_tile_gets_the_features_the_whole_scene_gives_its_pixels(
    trained: dict[str, Path], synthetic_envi: Path,
) -> None:
    """A denoiser reads 3 pixels around each pixel: windows read wider and cut back equal the whole scene's features."""
    from hsi.data.lazy import open_lazy_cube
    from hsi.evaluation.predict import tile_grid
    from hsi.experiments.predict import read_tile_window, window_features

    checkpoint = load_run_model(trained["svm_dncnn"])
    cube = open_lazy_cube(synthetic_envi)

    def features_of(tile: Any, halo: int) -> tuple[Any, np.ndarray]:
        window = read_tile_window(tile, cube, checkpoint, halo=halo)
        return window, window_features(window, checkpoint, nan_policy="error")[0]

    _, whole = features_of(tile_grid(30, 26, 30)[0], 0)
    for tile in tile_grid(30, 26, 12):
        window, features = features_of(tile, 4)
        np.testing.assert_allclose(features, whole[window.rows, window.cols], rtol=1e-4, atol=1e-4)


def test_the_quick_look_names_pixels_outside_the_data_no_data(
    trained: dict[str, Path], synthetic_envi: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The zero-spectrum corner is drawn as "no data", not as the ground truth's "unlabelled"."""
    from hsi.reporting import figures

    drawn: list[dict[str, Any]] = []
    original = figures.classification_map

    def spy(class_map: Any, **kwargs: Any) -> Any:
        drawn.append({"map": np.asarray(class_map), **kwargs})
        return original(class_map, **kwargs)

    monkeypatch.setattr(figures, "classification_map", spy)
    _predict(trained["svm"], synthetic_envi, tmp_path, "--tile-size", "16")
    (call,) = drawn
    assert (call["map"][:3, :4] == -1).all()
    assert call["missing_label"].startswith("no data")
    legend = [t.get_text() for t in original(call["map"], class_names=call["class_names"],
                                             missing_label=call["missing_label"]).legends[0].get_texts()]
    assert "unlabelled" not in legend and legend[-1].startswith("no data")


def test_a_scored_cube_too_big_to_read_whole_points_to_tiles(
    trained: dict[str, Path], synthetic_scene: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--gt makes predict read the cube whole; past the memory there is, the one line says how to stream it."""
    from hsi._core.memory import MEMORY_ENV

    cube = np.tile(np.load(synthetic_scene.cube_npy), (10, 10, 1))  # 300 x 260: 7 MB as float32
    np.save(tmp_path / "big.npy", cube)
    np.save(tmp_path / "big_gt.npy", np.tile(np.load(synthetic_scene.gt_npy), (10, 10)))
    monkeypatch.setenv(MEMORY_ENV, "2M")  # the checkpoint fits, the cube does not
    code = main(["predict", "--checkpoint", str(trained["svm"]), "--cube", str(tmp_path / "big.npy"), "--gt",
                 str(tmp_path / "big_gt.npy"), "--out", str(tmp_path / "out"), "--device", "cpu", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "available" in err and "leave out --gt to classify it tile by tile" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
