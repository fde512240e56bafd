"""HybridSN's channels-last forward pass computes the paper's function exactly (layout only)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hsi.models.hybridsn import HybridSN


def _reference_features(model: HybridSN, x: torch.Tensor) -> torch.Tensor:
    """The plain formulation: contiguous tensors, ReLU after each 3-D convolution, flatten(1, 2)."""
    x = model.conv3d(x.unsqueeze(1))
    return model.conv2d(x.flatten(1, 2))


def test_synthetic_forward_and_gradients_match_the_plain_formulation() -> None:
    torch.manual_seed(0)
    model = HybridSN(in_chans=16, num_classes=3, patch_size=11).eval()
    x = torch.randn(5, 16, 11, 11)
    fast = model.forward_features(x)
    grads_fast = torch.autograd.grad(fast.square().sum(), list(model.parameters()), allow_unused=True)
    plain = _reference_features(model, x)
    grads_plain = torch.autograd.grad(plain.square().sum(), list(model.parameters()), allow_unused=True)
    assert fast.shape == plain.shape == (5, 64, 3, 3)
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-5)
    for g_fast, g_plain in zip(grads_fast, grads_plain, strict=True):
        if g_plain is None:  # the dense head is not part of the features
            assert g_fast is None
            continue
        torch.testing.assert_close(g_fast, g_plain, rtol=1e-4, atol=1e-5)


def test_synthetic_stacking_order_is_channel_major() -> None:
    """Channel c * depth + d of the 2-D input holds feature cube c at depth d (the paper's reshape)."""
    model = HybridSN(in_chans=14, num_classes=2, patch_size=9).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        # Make the 2-D convolution read only stacked channel 1 (cube 0, depth 1) at its centre tap.
        model.conv2d[0].weight[0, 1, 1, 1] = 1.0
        model.conv3d[4].bias[0] = 0.5  # feature cube 0 is 0.5 at both depths (14 - 12 = 2), the others 0
        out = model.forward_features(torch.randn(2, 14, 9, 9))
    # Depth-major stacking (d * 32 + c) would put cube 1 (all zeros) in channel 1.
    assert torch.allclose(out[:, 0], torch.full_like(out[:, 0], 0.5))
