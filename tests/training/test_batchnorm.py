"""recalibrate_batchnorm on a tiny synthetic scene: exact statistics, weights untouched, no-op without BN."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hsi.data.patches import PatchSource
from hsi.training.batchnorm import recalibrate_batchnorm
from hsi.training.trainer import PixelSet


def _synthetic_pixels(n: int = 64) -> tuple[PatchSource, PixelSet]:
    rng = np.random.default_rng(0)
    synthetic_cube = (3.0 + 2.0 * rng.standard_normal((12, 12, 4))).astype(np.float32)
    source = PatchSource(synthetic_cube, patch_size=3)
    idx = torch.from_numpy(rng.choice(144, size=n, replace=False))
    return source, PixelSet(idx // 12, idx % 12, torch.zeros(n, dtype=torch.long))


def test_running_stats_become_the_statistics_of_the_pixels() -> None:
    source, pixels = _synthetic_pixels()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(4, 5, 3), nn.Dropout(0.5), nn.BatchNorm2d(5), nn.Flatten(), nn.Linear(5, 2))
    bn = model[2]
    bn.running_mean.fill_(100.0)  # stale statistics, as after a short run
    bn.running_var.fill_(100.0)
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}

    assert recalibrate_batchnorm(model, source, pixels, batch_size=64, seed=0) == 1

    with torch.no_grad():
        features = model[0](source.gather(pixels.rows, pixels.cols)).transpose(0, 1).reshape(5, -1)
    # one batch holds every pixel: the statistics are exact (dropout was off)
    assert torch.allclose(bn.running_mean, features.mean(1), atol=1e-5)
    assert torch.allclose(bn.running_var, features.var(1, unbiased=True), rtol=1e-4)
    assert bn.momentum == 0.1 and not model.training
    for k, v in weights.items():
        assert torch.equal(model.state_dict()[k], v), k


def test_several_batches_average_to_the_whole_set() -> None:
    source, pixels = _synthetic_pixels()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(4, 5, 3), nn.BatchNorm2d(5))
    recalibrate_batchnorm(model, source, pixels, batch_size=16, seed=1)
    with torch.no_grad():
        features = model[0](source.gather(pixels.rows, pixels.cols)).transpose(0, 1).reshape(5, -1)
    assert torch.allclose(model[1].running_mean, features.mean(1), atol=1e-5)  # equal batches: exact mean
    assert torch.allclose(model[1].running_var, features.var(1), rtol=0.2)


def test_model_without_batchnorm_is_untouched() -> None:
    source, pixels = _synthetic_pixels()
    model = nn.Sequential(nn.Conv2d(4, 2, 3), nn.Flatten())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert recalibrate_batchnorm(model, source, pixels, batch_size=8, seed=0) == 0
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
