"""Model size and cost per patch: parameters, multiply-accumulates, activation memory.

Counted with forward hooks on one dummy patch of shape (1, C, p, p), in eval mode and
without gradients:

* ``parameters``: trainable parameters.
* ``macs_per_patch``: multiply-accumulates of every ``Conv1d``/``Conv2d``/``Conv3d``
  (output elements x in_channels / groups x kernel volume, so depthwise and grouped
  convolutions count right) and ``Linear`` (output elements x in_features). Biases,
  normalisation, activations, pooling and element-wise ops are not counted, as is usual.
* ``activation_bytes_per_patch``: sum of the output sizes of all leaf modules, at 4
  bytes (float32) per element; a rough guide to the memory one patch needs in training.

Only networks have such figures; :meth:`hsi.training.classifier.Classifier.profile` answers
for every model kind.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from hsi.models.registry import create_model

__all__ = ["profile_model"]

_FLOAT32_BYTES = 4


def _macs(module: nn.Module, output: torch.Tensor) -> int:
    """Multiply-accumulates of one call of a conv or linear layer that produced ``output``."""
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        per_output = (module.in_channels // module.groups) * math.prod(module.kernel_size)
        return output.numel() * per_output
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return 0


def profile_model(
    name_or_module: str | nn.Module,
    *,
    patch_size: int,
    in_chans: int,
    num_classes: int,
) -> dict[str, int | None]:
    """Counts parameters, MACs and activation memory of one model for one patch.

    Args:
        name_or_module: a registered network's name (built with :func:`create_model`), or a
            built ``nn.Module`` that takes (N, in_chans, patch_size, patch_size).
        patch_size: odd patch side p.
        in_chans: number of input bands C.
        num_classes: number of classes K (used when building from a name).

    Returns:
        ``{"parameters": int, "macs_per_patch": int, "activation_bytes_per_patch": int}``.

    Raises:
        UnknownNameError: the name is not registered.
        ConfigError: the model does not accept these sizes.
    """
    if isinstance(name_or_module, str):
        model = create_model(name_or_module, in_chans=in_chans, num_classes=num_classes, patch_size=patch_size, seed=0)
    else:
        model = name_or_module

    parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32

    totals = {"macs": 0, "elements": 0}

    def hook(module: nn.Module, _inputs: tuple[Any, ...], output: Any) -> None:
        if isinstance(output, torch.Tensor):
            totals["macs"] += _macs(module, output)
            totals["elements"] += output.numel()

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(hook) for m in leaves]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, in_chans, patch_size, patch_size, device=device, dtype=dtype))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return {
        "parameters": int(parameters),
        "macs_per_patch": int(totals["macs"]),
        "activation_bytes_per_patch": int(totals["elements"] * _FLOAT32_BYTES),
    }
