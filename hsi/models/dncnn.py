"""DnCNN: a residual denoising CNN (Zhang, Zuo, Chen, Meng, Zhang, IEEE TIP 2017,
"Beyond a Gaussian Denoiser: Residual Learning of Deep CNN for Image Denoising").

The network predicts the noise and subtracts it: ``output = input - body(input)``. The paper's
body is ``depth`` = 17 layers of 3x3 convolutions with 64 channels: conv + ReLU, then
``depth - 2`` times conv + batch norm + ReLU, then one conv to the output. Here it denoises one
band of a cube at a time as a 2-D image; the input may carry ``neighbours`` adjacent bands on
each side as extra channels (spectral context), and the output is the centre band.

Not a classifier, so it is not in :data:`hsi.models.MODELS` (``models`` and ``compare`` list and
train only classifiers); the denoising front-end (:mod:`hsi.training.frontend`) builds it with
:func:`dncnn`.
"""

from __future__ import annotations

import torch
from torch import nn

from hsi._core.errors import ConfigError

__all__ = ["DnCNN", "dncnn"]


class DnCNN(nn.Module):
    """Residual denoiser on images of shape (N, 1 + 2 x neighbours, H, W) -> (N, 1, H, W).

    Args:
        neighbours: adjacent bands on each side given as extra input channels, default=0.
        depth: convolution layers, default=17 (the paper's); >= 2.
        width: channels of the hidden layers, default=64 (the paper's).
    """

    def __init__(self, *, neighbours: int = 0, depth: int = 17, width: int = 64) -> None:
        super().__init__()
        if depth < 2 or width < 1 or neighbours < 0:
            raise ConfigError(
                f"DnCNN needs depth >= 2, width >= 1 and neighbours >= 0; got depth {depth}, width {width}, "
                f"neighbours {neighbours}."
            )
        self.neighbours, self.depth, self.width = neighbours, depth, width
        self.in_chans = 1 + 2 * neighbours
        layers: list[nn.Module] = [nn.Conv2d(self.in_chans, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, 1, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The centre band minus the predicted noise, shape (N, 1, H, W)."""
        centre = x[:, self.neighbours : self.neighbours + 1]
        return centre - self.body(x)


def dncnn(*, neighbours: int = 0, depth: int = 17, width: int = 64) -> DnCNN:
    """DnCNN-S of Zhang et al. 2017 (17 layers, 64 channels by default); smaller for a CPU."""
    return DnCNN(neighbours=neighbours, depth=depth, width=width)
