"""DnCNN (Zhang et al. 2017): the paper's layout, output shape, and the residual form output = input - noise."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hsi._core.errors import ConfigError
from hsi.models import MODELS
from hsi.models.dncnn import dncnn


def test_default_is_the_papers_17_layers_of_64_channels() -> None:
    network = dncnn()
    convs = [m for m in network.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 17 and convs[1].out_channels == 64
    assert sum(isinstance(m, nn.BatchNorm2d) for m in network.modules()) == 15


@pytest.mark.parametrize("neighbours", [0, 2])
def test_output_is_one_band_of_the_input_size(neighbours: int) -> None:
    network = dncnn(neighbours=neighbours, depth=4, width=8).eval()
    out = network(torch.randn(3, 1 + 2 * neighbours, 13, 11))
    assert out.shape == (3, 1, 13, 11)


@pytest.mark.parametrize("neighbours", [0, 1])
def test_output_is_the_centre_band_minus_the_predicted_noise(neighbours: int) -> None:
    torch.manual_seed(0)
    network = dncnn(neighbours=neighbours, depth=5, width=8).eval()
    x = torch.randn(2, 1 + 2 * neighbours, 9, 9)
    centre = x[:, neighbours : neighbours + 1]
    with torch.no_grad():
        assert torch.allclose(network(x), centre - network.body(x), atol=1e-6)
        last = network.body[-1]
        last.weight.zero_()
        last.bias.zero_()  # predicts no noise: the band comes back unchanged
        assert torch.equal(network(x), centre)


def test_bad_sizes_are_refused_and_it_is_no_classifier() -> None:
    with pytest.raises(ConfigError, match="depth >= 2"):
        dncnn(depth=1)
    assert "dncnn" not in MODELS  # `models` and `compare` list classifiers only
