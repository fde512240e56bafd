"""Every registered torch model: forward + backward, shapes, timm's attribute contract."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hsi._core.errors import ConfigError
from hsi.models import ModelInfo, create_model, list_models

TORCH_MODELS = list_models(kind="torch")
IN_CHANS, NUM_CLASSES = 20, 5


def _sizes(info: ModelInfo) -> list[int]:
    """The smallest accepted size plus 5, 9 and 25."""
    return sorted({info.min_patch_size, 5, 9, 25})


CASES = [(info, p) for info in TORCH_MODELS for p in _sizes(info)]


def _options(info: ModelInfo, p: int) -> list[dict[str, bool]]:
    """The default options, plus ``se=True`` (at p=9 only, to keep the suite fast)."""
    return [{}, {"se": True}] if "se" in info.options and p == 9 else [{}]


@pytest.mark.parametrize(("info", "p"), CASES, ids=[f"{i.name}-p{p}" for i, p in CASES])
def test_forward_backward(info: ModelInfo, p: int) -> None:
    gen = torch.Generator().manual_seed(0)
    for options in _options(info, p):
        model = create_model(info.name, in_chans=IN_CHANS, num_classes=NUM_CLASSES, patch_size=p, seed=0, **options)
        model.train()
        x = torch.randn(2, IN_CHANS, p, p, generator=gen)
        out = model(x)
        assert out.shape == (2, NUM_CLASSES)
        assert torch.isfinite(out).all()
        nn.functional.cross_entropy(out, torch.tensor([0, NUM_CLASSES - 1])).backward()
        for name, param in model.named_parameters():
            assert param.grad is not None, f"{info.name} {options}: no gradient for {name}"
            assert torch.isfinite(param.grad).all(), f"{info.name} {options}: non-finite gradient in {name}"


@pytest.mark.parametrize("info", TORCH_MODELS, ids=lambda i: i.name)
def test_accepts_every_odd_size_5_to_31(info: ModelInfo) -> None:
    # Shapes only: on the meta device nothing is computed (real compute: test_forward_backward).
    for p in range(5, 32, 2):
        with torch.device("meta"):
            model = create_model(info.name, in_chans=IN_CHANS, num_classes=NUM_CLASSES, patch_size=p).eval()
            assert model(torch.zeros(1, IN_CHANS, p, p)).shape == (1, NUM_CLASSES)


@pytest.mark.parametrize("info", TORCH_MODELS, ids=lambda i: i.name)
def test_timm_contract(info: ModelInfo) -> None:
    model = create_model(info.name, in_chans=IN_CHANS, num_classes=NUM_CLASSES, patch_size=11).eval()
    assert (model.in_chans, model.num_classes, model.patch_size) == (IN_CHANS, NUM_CLASSES, 11)
    assert model.num_features > 0
    x = torch.randn(3, IN_CHANS, 11, 11)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape[:2] == (3, model.num_features)
        assert model.forward_head(feats, pre_logits=True).shape == (3, model.head_hidden_size)
        assert torch.equal(model.forward_head(feats), model(x))
    assert model.get_classifier().out_features == NUM_CLASSES
    model.reset_classifier(2)
    assert model.num_classes == 2
    with torch.no_grad():
        assert model(x).shape == (3, 2)
    model.reset_classifier(0)
    with torch.no_grad():
        assert model(x).shape == (3, model.head_hidden_size)


@pytest.mark.parametrize("info", TORCH_MODELS, ids=lambda i: i.name)
def test_wrong_input_shape_is_a_config_error(info: ModelInfo) -> None:
    model = create_model(info.name, in_chans=IN_CHANS, num_classes=NUM_CLASSES, patch_size=9)
    with pytest.raises(ConfigError, match=f"expects input of shape \\(N, {IN_CHANS}"):
        model(torch.zeros(2, IN_CHANS + 1, 9, 9))
    with pytest.raises(ConfigError, match="expects input"):
        model(torch.zeros(IN_CHANS, 9, 9))
