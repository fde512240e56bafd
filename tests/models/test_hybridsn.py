"""HybridSN against the paper (Roy et al., IEEE GRSL 2020)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hsi._core.errors import ConfigError
from hsi.models import create_model, profile_model
from hsi.models.hybridsn import HybridSN, HybridSN2D3D


def test_indian_pines_parameter_count_is_the_papers() -> None:
    model = create_model("hybridsn", in_chans=30, num_classes=16, patch_size=25)
    assert sum(p.numel() for p in model.parameters()) == 5_122_176
    assert profile_model("hybridsn", patch_size=25, in_chans=30, num_classes=16)["parameters"] == 5_122_176


def test_layers_are_the_papers() -> None:
    model = HybridSN(in_chans=30, num_classes=16, patch_size=25)
    convs3d = [m for m in model.modules() if isinstance(m, nn.Conv3d)]
    assert [(c.out_channels, c.kernel_size, c.padding) for c in convs3d] == [
        (8, (7, 3, 3), (0, 0, 0)),
        (16, (5, 3, 3), (0, 0, 0)),
        (32, (3, 3, 3), (0, 0, 0)),
    ]
    conv2d = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in conv2d] == [(32 * 18, 64, (3, 3))]
    dense = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(d.in_features, d.out_features) for d in dense] == [(64 * 17 * 17, 256), (256, 128), (128, 16)]
    assert [d.p for d in model.modules() if isinstance(d, nn.Dropout)] == [0.4, 0.4]
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)) for m in model.modules())
    with torch.no_grad():
        assert model.forward_features(torch.zeros(1, 30, 25, 25)).shape == (1, 64, 17, 17)


@pytest.mark.parametrize(("p", "side"), [(5, 1), (7, 1), (9, 1), (11, 3)])
def test_small_patches_are_padded_to_nine(p: int, side: int) -> None:
    model = HybridSN(in_chans=15, num_classes=3, patch_size=p).eval()
    with torch.no_grad():
        assert model.forward_features(torch.zeros(2, 15, p, p)).shape == (2, 64, side, side)


def test_too_few_bands_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="in_chans >= 13"):
        create_model("hybridsn", in_chans=12, num_classes=3, patch_size=25)
    create_model("hybridsn", in_chans=13, num_classes=3, patch_size=9)


def test_2d3d_variant_order_and_head_size() -> None:
    model = HybridSN2D3D(in_chans=30, num_classes=16, patch_size=25)
    kinds = [type(m) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))]
    assert kinds == [nn.Conv2d, nn.Conv3d, nn.Conv3d, nn.Conv3d]
    first_dense = next(m for m in model.modules() if isinstance(m, nn.Linear))
    assert first_dense.in_features == 64 * 17 * 17  # same head input as HybridSN
    literal = HybridSN2D3D(in_chans=10, num_classes=4, patch_size=9, depth_pool=0)
    assert next(m for m in literal.modules() if isinstance(m, nn.Linear)).in_features == 32 * 52
    with pytest.raises(ConfigError, match="depth_pool"):
        HybridSN2D3D(in_chans=10, num_classes=4, patch_size=9, depth_pool=53)
