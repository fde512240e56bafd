"""Device-sized batches: CPU micro-batches give the batch's gradient, inference batch size changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hsi._core.errors import ConfigError
from hsi.data.patches import PatchSource
from hsi.evaluation.predict import predict_scene
from hsi.models import create_model, profile_model
from hsi.training.batching import (
    CPU_ACTIVATION_BUDGET,
    MAX_INFERENCE_BATCH,
    even_chunks,
    inference_batch_size,
    train_micro_batch,
)
from hsi.training.classifier import TorchClassifier
from hsi.training.trainer import PixelSet, fit


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny inputs; waiting OpenMP threads only cost time on a shared machine
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(("n", "max_size"), [(0, 4), (1, 4), (7, 7), (8, 7), (7138, 17), (21025, 10000), (5, 1)])
def test_even_chunks_cover_with_less_padding_than_chunks(n: int, max_size: int) -> None:
    n_chunks, size = even_chunks(n, max_size)
    assert 1 <= size <= max(max_size, 1)
    assert n_chunks * size >= n
    assert n_chunks * size - n < max(n_chunks, 1)


def test_cpu_micro_batch_follows_the_activation_budget_and_cuda_keeps_the_batch() -> None:
    model = create_model("hybridsn", in_chans=30, num_classes=16, patch_size=25)
    per_patch = profile_model(model, patch_size=25, in_chans=30, num_classes=16)["activation_bytes_per_patch"]
    sizes = {"in_chans": 30, "patch_size": 25}
    cpu = train_micro_batch(model, batch_size=256, device=torch.device("cpu"), **sizes)
    assert cpu == CPU_ACTIVATION_BUDGET // per_patch == 17
    assert train_micro_batch(model, batch_size=8, device=torch.device("cpu"), **sizes) == 8
    assert train_micro_batch(model, batch_size=256, device=torch.device("cuda"), **sizes) == 256  # no profiling
    assert inference_batch_size(model, device=torch.device("cpu"), **sizes) == 17
    resnet = create_model("resnet", in_chans=30, num_classes=16, patch_size=25)  # batch norm: one pass per batch
    assert train_micro_batch(resnet, batch_size=256, device=torch.device("cpu"), **sizes) == 256


def _synthetic_problem(seed: int = 0) -> tuple[PatchSource, PixelSet]:
    rng = np.random.default_rng(seed)
    cube = rng.standard_normal((12, 13, 14)).astype(np.float32)
    source = PatchSource(cube, patch_size=9)
    rows, cols = source.pixel_coordinates()
    targets = torch.from_numpy(rng.integers(0, 3, rows.shape[0]))
    return source, PixelSet(rows, cols, targets)


def test_synthetic_micro_batches_accumulate_the_full_batch_gradient() -> None:
    source, pixels = _synthetic_problem()
    grads = {}
    for micro in (len(pixels), 10):  # one pass, or 16 passes of 9-10 patches
        torch.manual_seed(0)
        model = create_model("hybridsn", in_chans=14, num_classes=3, patch_size=9, drop_rate=0.0)

        def keep_grads(_epoch, net, _opt, _state, _last, micro=micro):
            grads[micro] = [p.grad.clone() for p in net.parameters()]  # still set after the last step

        state = fit(model, source, pixels, epochs=1, batch_size=len(pixels), lr=1e-3, seed=0, progress=False,
                    micro_batch=micro, on_epoch_end=keep_grads)
        assert 0 < state.history[0]["train_loss"] < 10
    for full, parts in zip(grads[len(pixels)], grads[10], strict=True):
        torch.testing.assert_close(parts, full, rtol=1e-4, atol=1e-6)


def test_synthetic_scene_prediction_does_not_depend_on_batch_size() -> None:
    source, _ = _synthetic_problem(1)
    torch.manual_seed(0)
    model = create_model("hybridsn", in_chans=14, num_classes=3, patch_size=9)
    classifier = TorchClassifier("hybridsn", model, in_chans=14, num_classes=3, patch_size=9)
    auto = predict_scene(classifier, source)
    assert auto.shape == (12, 13) and auto.dtype == np.int64
    for batch_size in (1, 7, 155, 156, 10_000):  # 156 = every pixel; 7 leaves a padded last batch
        assert np.array_equal(predict_scene(classifier, source, batch_size=batch_size), auto)
    assert model.training is False
    with pytest.raises(ConfigError, match="batch size"):
        predict_scene(classifier, source, batch_size=0)


@pytest.mark.gpu
def test_gpu_inference_batch_is_sized_to_free_memory() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    device = torch.device("cuda")
    model = create_model("hybridsn", in_chans=30, num_classes=16, patch_size=25).to(device)
    size = inference_batch_size(model, in_chans=30, patch_size=25, device=device)
    assert 17 < size <= MAX_INFERENCE_BATCH
