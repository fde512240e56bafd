"""Dense (fully convolutional) full-scene inference equals patch-by-patch inference, pixel for pixel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hsi._core.errors import ConfigError
from hsi.cli.main import main
from hsi.data.patches import PatchSource
from hsi.evaluation.predict import predict_scene, resolve_inference
from hsi.training.classifier import TorchClassifier
from hsi.training.factory import build_classifier

# float32 sums in a different order (a 17x17 convolution instead of a Linear over the same
# products): the logits differ in the last bits only.
ATOL = 1e-5


def _classifier(name: str, *, in_chans: int, patch_size: int, num_classes: int = 5) -> TorchClassifier:
    classifier = build_classifier(name, in_chans=in_chans, num_classes=num_classes, patch_size=patch_size, seed=0)
    assert isinstance(classifier, TorchClassifier)
    classifier.network.eval()  # dropout off: the equality holds in eval mode
    return classifier


def _source(height: int, width: int, bands: int, patch_size: int, pad_mode: str, seed: int = 0) -> PatchSource:
    cube = np.random.default_rng(seed).standard_normal((height, width, bands)).astype(np.float32)
    return PatchSource(cube, patch_size=patch_size, pad_mode=pad_mode)


def _patch_logits(classifier: TorchClassifier, source: PatchSource) -> torch.Tensor:
    """(K, H, W) logits, one patch per pixel."""
    rows, cols = source.pixel_coordinates()
    with torch.inference_mode():
        logits = classifier.network(source.gather(rows, cols))
    return logits.T.reshape(-1, source.height, source.width)


def _tied(logits: torch.Tensor) -> np.ndarray:
    """(H, W) pixels whose two largest logits are within tolerance: their argmax may go either way."""
    top2 = logits.topk(2, dim=0).values
    return ((top2[0] - top2[1]) <= 4 * ATOL).numpy()


MODELS = [("hybridsn", 13), ("hybridsn_2d3d", 4)]  # the fewest bands each accepts: fast


@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
@pytest.mark.parametrize(("name", "bands"), MODELS)
def test_dense_logits_equal_patch_logits_on_every_pixel(name: str, bands: int, pad_mode: str) -> None:
    classifier = _classifier(name, in_chans=bands, patch_size=9)
    source = _source(11, 9, bands, 9, pad_mode)  # odd sides, most pixels near a border
    with torch.inference_mode():
        dense = classifier.network.forward_dense(source.padded.unsqueeze(0))[0]
    patches = _patch_logits(classifier, source)
    assert dense.shape == patches.shape == (5, 11, 9)
    torch.testing.assert_close(dense, patches, atol=ATOL, rtol=1e-4)


@pytest.mark.parametrize(("name", "bands", "pad_mode", "tile_size"), [
    ("hybridsn", 13, "constant", 4),  # 4 divides neither 13 nor 11: edge tiles reach past the scene
    ("hybridsn", 13, "reflect", None),  # the default tile: one tile, the scene's size
    ("hybridsn_2d3d", 4, "reflect", 5),
    ("hybridsn_2d3d", 4, "constant", None),
])
def test_tiled_dense_map_equals_patch_map(name: str, bands: int, pad_mode: str, tile_size: int | None) -> None:
    classifier = _classifier(name, in_chans=bands, patch_size=9)
    source = _source(13, 11, bands, 9, pad_mode, seed=1)
    dense = predict_scene(classifier, source, inference="dense", tile_size=tile_size)
    logits = _patch_logits(classifier, source)
    patches = logits.argmax(0).numpy()
    assert len(np.unique(patches)) > 1  # random weights still vary across pixels: a misplaced tile would show
    assert not ((dense != patches) & ~_tied(logits)).any()


def test_patch_path_is_unchanged_by_the_dense_option() -> None:
    classifier = _classifier("hybridsn", in_chans=13, patch_size=9)
    source = _source(11, 9, 13, 9, "constant", seed=3)
    patches = predict_scene(classifier, source, inference="patches", batch_size=17)  # uneven last batch
    np.testing.assert_array_equal(patches, _patch_logits(classifier, source).argmax(0).numpy())


def test_dense_probabilities_of_a_batch_of_tiles_equal_patch_probabilities() -> None:
    classifier = _classifier("hybridsn", in_chans=13, patch_size=9)
    source = _source(12, 10, 13, 9, "reflect", seed=2)
    # Pixels rows 3..7, cols 2..8 and rows 0..4, cols 0..6: each tile with its halo of 4.
    tiles = torch.stack([source.padded[:, 3:3 + 5 + 8, 2:2 + 7 + 8], source.padded[:, :5 + 8, :7 + 8]])
    dense = classifier.predict_proba_dense(tiles)
    for i, (top, left) in enumerate([(3, 2), (0, 0)]):
        rows, cols = torch.meshgrid(torch.arange(top, top + 5), torch.arange(left, left + 7), indexing="ij")
        patch = classifier.predict_proba(source, rows.flatten(), cols.flatten()).T.reshape(-1, 5, 7)
        torch.testing.assert_close(dense[i], patch, atol=ATOL, rtol=1e-4)


def test_tiles_per_pass_fit_one_patch_wise_pass() -> None:
    classifier = _classifier("hybridsn", in_chans=30, patch_size=25, num_classes=16)
    source = _source(40, 40, 30, 25, "constant")
    # One CPU pass holds 17-25 patches of 3.8 MB (64-96 MB); a dense tile ~14 kB per input pixel.
    assert 2 <= classifier.dense_batch_size(source, 32, 32) <= 3
    assert classifier.dense_batch_size(source, 8, 8) > classifier.dense_batch_size(source, 32, 32)


@pytest.mark.parametrize(("name", "patch_size", "bands"), [
    ("hybridsn", 7, 15),  # zero-padded to 9 inside the model: no exact dense pass
    ("resnet", 9, 6),  # global average pooling over the patch
    ("svm", 1, 6),
])
def test_models_without_dense_pass_stay_on_patches(name: str, patch_size: int, bands: int) -> None:
    classifier = build_classifier(name, in_chans=bands, num_classes=3, patch_size=patch_size, seed=0)
    assert not classifier.supports_dense
    assert resolve_inference(classifier, "auto") == "patches"
    with pytest.raises(ConfigError, match="no exact dense pass"):
        resolve_inference(classifier, "dense")


def test_auto_picks_dense_where_supported() -> None:
    classifier = _classifier("hybridsn_2d3d", in_chans=6, patch_size=9)
    assert classifier.supports_dense
    assert resolve_inference(classifier, "auto") == "dense"
    assert resolve_inference(classifier, "patches") == "patches"
    with pytest.raises(ConfigError, match="--inference must be one of auto, dense, patches"):
        resolve_inference(classifier, "tiles")  # type: ignore[arg-type]


def test_cli_inference_dense_on_a_model_without_it_is_one_line(synthetic_scene, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--cube", str(synthetic_scene.cube_npy), "--gt", str(synthetic_scene.gt_npy),
                 "--out", str(tmp_path), "--model", "hybridsn", "--patch-size", "7", "--pca-components", "13",
                 "--epochs", "1", "--quiet", "--inference", "dense"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "no exact dense pass" in err
    assert not any(tmp_path.iterdir())


def test_train_and_predict_record_the_inference_used(synthetic_scene, tmp_path: Path) -> None:
    assert main(["train", "--cube", str(synthetic_scene.cube_npy), "--gt", str(synthetic_scene.gt_npy),
                 "--out", str(tmp_path / "runs"), "--patch-size", "9", "--pca-components", "13",
                 "--epochs", "1", "--recipe", "paper", "--quiet"]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["inference"] == "dense"
    assert metrics["train_input"] == "crops"  # auto, 30 x 26 scene, batch 256: one block, cheaper
    assert "(on crops, float32)" in (run_dir / "report.md").read_text()
    dense_map = np.load(run_dir / "prediction.npy")
    assert main(["predict", "--checkpoint", str(run_dir), "--cube", str(synthetic_scene.cube_npy),
                 "--out", str(tmp_path / "pred"), "--inference", "patches"]) == 0
    (pred_dir,) = (tmp_path / "pred").iterdir()
    assert json.loads((pred_dir / "prediction.json").read_text())["inference"] == "patches"
    np.testing.assert_array_equal(np.load(pred_dir / "prediction.npy"), dense_map)
