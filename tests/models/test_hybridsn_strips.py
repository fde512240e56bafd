"""The dense trunk of a single CPU tile runs as a batch of row strips: same maps, same gradients."""

from __future__ import annotations

import pytest
import torch

from hsi.models import create_model
from hsi.models.hybridsn import DENSE_STRIPS, _in_row_strips


@pytest.mark.parametrize("model_name", ["hybridsn", "hybridsn_2d3d"])
@pytest.mark.parametrize("rows", [8 + 2 * DENSE_STRIPS, 26, 27])  # the fewest rows cut, even and odd splits
def test_row_strips_equal_one_pass_with_gradients(model_name: str, rows: int) -> None:
    torch.manual_seed(0)
    model = create_model(model_name, in_chans=14, num_classes=3, patch_size=9, seed=0)
    tile = torch.randn(1, 14, rows, 13, requires_grad=True)
    strips = _in_row_strips(model._features, tile)
    whole = model._features(tile)
    assert strips.shape == whole.shape == (1, whole.shape[1], rows - 8, 5)
    torch.testing.assert_close(strips, whole, rtol=1e-4, atol=1e-5)
    weights = torch.randn_like(whole)
    (strip_grad,) = torch.autograd.grad((strips * weights).sum(), tile)
    (whole_grad,) = torch.autograd.grad((whole * weights).sum(), tile)
    torch.testing.assert_close(strip_grad, whole_grad, rtol=1e-4, atol=1e-5)


def test_batches_and_short_tiles_pass_through_whole() -> None:
    """Only a single tile tall enough for the strips is cut; anything else is one call."""
    calls = []

    def trunk(x: torch.Tensor) -> torch.Tensor:
        calls.append(x.shape[0])
        return x[:, :, 8:, 8:]

    _in_row_strips(trunk, torch.zeros(2, 3, 30, 12))
    _in_row_strips(trunk, torch.zeros(1, 3, 7 + 2 * DENSE_STRIPS, 12))
    _in_row_strips(trunk, torch.zeros(1, 3, 30, 12))
    assert calls == [2, 1, DENSE_STRIPS]
