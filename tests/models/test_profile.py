"""profile_model: parameters, MACs and activation memory per patch."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from hsi.models import create_model, list_models, profile_model

KEYS = {"parameters", "macs_per_patch", "activation_bytes_per_patch"}


@pytest.mark.parametrize("info", list_models(kind="torch"), ids=lambda i: i.name)
def test_profile_keys_and_macs_match_torch_flop_counter(info: object) -> None:
    name = info.name  # type: ignore[attr-defined]
    model = create_model(name, in_chans=12 if name != "hybridsn" else 14, num_classes=4, patch_size=9).eval()
    chans = model.in_chans
    prof = profile_model(model, patch_size=9, in_chans=chans, num_classes=4)
    assert set(prof) == KEYS
    assert prof["parameters"] == sum(p.numel() for p in model.parameters())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, chans, 9, 9))
    assert 2 * prof["macs_per_patch"] == counter.get_total_flops()  # FLOPs = 2 x MACs for conv/matmul
    assert prof["activation_bytes_per_patch"] > 0
    assert prof["activation_bytes_per_patch"] % 4 == 0


def test_depthwise_convolution_counts_groups() -> None:
    model = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.Flatten(), nn.Linear(8 * 25, 3))
    prof = profile_model(model, patch_size=5, in_chans=8, num_classes=3)
    assert prof["macs_per_patch"] == 8 * 25 * 9 + 8 * 25 * 3
    assert prof["parameters"] == 8 * 9 + 8 * 25 * 3 + 3
    assert prof["activation_bytes_per_patch"] == 4 * (8 * 25 + 8 * 25 + 3)


def test_profile_leaves_the_model_in_training_mode() -> None:
    model = create_model("resnet", in_chans=5, num_classes=2, patch_size=7)
    profile_model(model, patch_size=7, in_chans=5, num_classes=2)
    assert model.training


@pytest.mark.parametrize("name", ["svm", "random_forest"])
def test_sklearn_models_have_no_counts(name: str) -> None:
    from hsi.training.factory import build_classifier

    prof = build_classifier(name, patch_size=25, in_chans=30, num_classes=16).profile()
    assert prof == dict.fromkeys(KEYS)


def test_networks_profile_through_the_classifier_as_through_the_function() -> None:
    from hsi.training.factory import build_classifier

    classifier = build_classifier("hybridsn", patch_size=25, in_chans=30, num_classes=16, seed=0)
    assert classifier.profile() == profile_model("hybridsn", patch_size=25, in_chans=30, num_classes=16)
    assert classifier.profile()["parameters"] == 5_122_176
