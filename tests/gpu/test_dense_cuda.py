"""Dense inference and crop training on CUDA: the CPU equality tests, run on the GPU.

Skipped where ``torch.cuda.is_available()`` is false; deselected by default (``-m gpu`` runs
them; ``scripts/gpu_check.py`` does). Synthetic cubes, small sizes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hsi.data.patches import PatchSource
from hsi.evaluation.predict import predict_scene
from hsi.models import create_model
from hsi.training.classifier import TorchClassifier
from hsi.training.crops import crop_windows
from hsi.training.factory import build_classifier

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="gpu: CUDA is not available")]

CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def _full_float32():
    """TF32 off: the equality is a float32 contract; predict's bf16 autocast is tested apart below."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _source(height: int, width: int, bands: int, patch_size: int, pad_mode: str, seed: int = 0) -> PatchSource:
    cube = np.random.default_rng(seed).standard_normal((height, width, bands)).astype(np.float32)
    return PatchSource(cube, patch_size=patch_size, pad_mode=pad_mode, device=CUDA)


def _classifier(name: str, bands: int) -> TorchClassifier:
    classifier = build_classifier(name, in_chans=bands, num_classes=5, patch_size=9, seed=0, device=CUDA)
    assert isinstance(classifier, TorchClassifier)
    classifier.network.eval()
    return classifier


@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
@pytest.mark.parametrize(("name", "bands"), [("hybridsn", 13), ("hybridsn_2d3d", 4)])
def test_dense_logits_equal_patch_logits_on_cuda(name: str, bands: int, pad_mode: str) -> None:
    classifier = _classifier(name, bands)
    source = _source(11, 9, bands, 9, pad_mode)
    rows, cols = source.pixel_coordinates()
    with torch.inference_mode():
        dense = classifier.network.forward_dense(source.padded.unsqueeze(0))[0]
        patches = classifier.network(source.gather(rows, cols)).T.reshape(-1, 11, 9)
    torch.testing.assert_close(dense, patches, atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("tile_size", [4, None])
def test_tiled_dense_map_equals_patch_map_on_cuda(tile_size: int | None) -> None:
    """Through predict_scene (bf16 autocast on CUDA both ways): equal but where two logits tie within bf16."""
    classifier = _classifier("hybridsn", 13)
    source = _source(13, 11, 13, 9, "constant", seed=1)
    dense = predict_scene(classifier, source, inference="dense", tile_size=tile_size)
    patches = predict_scene(classifier, source, inference="patches")
    rows, cols = source.pixel_coordinates()
    with torch.inference_mode():
        logits = classifier.network(source.gather(rows, cols)).T.reshape(-1, 13, 11).float().cpu()
    top2 = logits.topk(2, dim=0).values
    tied = ((top2[0] - top2[1]) <= 0.05 * top2[0].abs().clamp(min=1)).numpy()
    assert len(np.unique(patches)) > 1
    assert not ((dense != patches) & ~tied).any()


def test_crop_gradients_equal_patch_gradients_on_cuda() -> None:
    source = _source(23, 19, 13, 11, "reflect")
    model = create_model("hybridsn", in_chans=13, num_classes=4, patch_size=11, seed=0).to(CUDA).eval()
    flat = np.random.default_rng(2).choice(23 * 19, size=40, replace=False)
    rows, cols = torch.from_numpy(flat // 19).to(CUDA), torch.from_numpy(flat % 19).to(CUDA)
    targets = torch.from_numpy(np.random.default_rng(3).integers(0, 4, size=40)).to(CUDA)
    expected = model(source.gather(rows, cols))
    nn.functional.cross_entropy(expected, targets).backward()
    patch_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    got = model.forward_head(crop_windows(model, source, rows, cols, side=10))
    nn.functional.cross_entropy(got, targets).backward()
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-4)
    for crop_grad, patch_grad in zip((p.grad for p in model.parameters()), patch_grads, strict=True):
        torch.testing.assert_close(crop_grad, patch_grad, rtol=1e-3, atol=1e-4)
