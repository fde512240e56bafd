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
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hsi.models.registry import create_model

__all__ = ["DenseCost", "dense_cost", "profile_model"]

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


@dataclass(frozen=True)
class DenseCost:
    """How a dense-capable network's MACs grow with the tile it runs on.

    ``layers``: for each convolution of ``dense_features``, (MACs per output pixel, rows and
    columns it has lost against the tile), so a (H, W) tile costs
    ``sum(c * (H - lost) * (W - lost))``. ``head_macs``: the head's MACs per classified pixel.
    """

    layers: tuple[tuple[float, int], ...]
    head_macs: int

    def trunk_macs(self, height: int, width: int) -> float:
        """MACs of ``dense_features`` over a (height, width) tile."""
        return sum(c * max(height - lost, 0) * max(width - lost, 0) for c, lost in self.layers)


def dense_cost(network: Any, *, in_chans: int, patch_size: int) -> DenseCost:
    """Counts the convolutions of ``network.dense_features`` on patch-sized tiles (forward hooks, no gradients).

    Args:
        network: a network with an exact dense pass (``dense_features``).
        in_chans, patch_size: the sizes it was built for.
    """
    first = next(network.parameters())
    layers: list[tuple[float, int]] = []

    def hook(module: nn.Module, _inputs: tuple[Any, ...], output: Any) -> None:
        macs = _macs(module, output)
        if macs:
            rows, cols = output.shape[-2:]
            layers.append((macs / (output.shape[0] * rows * cols), patch_size - rows))

    handles = [m.register_forward_hook(hook) for m in network.modules() if next(m.children(), None) is None]
    was_training = network.training
    try:
        network.eval()
        with torch.no_grad():  # two tiles: a batch runs whole (hsi.models.hybridsn._in_row_strips cuts single tiles)
            network.dense_features(torch.zeros(2, in_chans, patch_size, patch_size, device=first.device,
                                               dtype=first.dtype))
    finally:
        for h in handles:
            h.remove()
        network.train(was_training)
    cost = DenseCost(tuple(layers), 0)
    total = profile_model(network, patch_size=patch_size, in_chans=in_chans, num_classes=0)["macs_per_patch"]
    return DenseCost(cost.layers, int(total or 0) - round(cost.trunk_macs(patch_size, patch_size)))
