"""Initialisation keeps the signal alive through the networks without normalisation."""

from __future__ import annotations

import torch

from hsi.models import create_model


def test_alexnet_pre_logits_keep_the_input_scale_at_init() -> None:
    # PyTorch's default init divides the variance by ~6 per ReLU layer: RMS 0.026 here (2.6 with
    # He init), and training stalled near chance for ~10 epochs (see alexnet._init_weights).
    model = create_model("alexnet", in_chans=15, num_classes=6, patch_size=15, seed=0).eval()
    synthetic_patches = torch.randn(64, 15, 15, 15, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        pre_logits = model.forward_head(model.forward_features(synthetic_patches), pre_logits=True)
    rms = float(pre_logits.pow(2).mean().sqrt())
    assert 0.5 < rms < 20.0, rms
    assert float(model.get_classifier().weight.detach().std()) < 0.02  # small classifier: near-uniform first outputs
