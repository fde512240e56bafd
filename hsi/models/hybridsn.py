"""HybridSN: a 3-D convolution stack followed by a 2-D convolution and a dense head.

Paper: S. K. Roy, G. Krishna, S. R. Dubey, B. B. Chaudhuri, "HybridSN: Exploring 3-D–2-D CNN
Feature Hierarchy for Hyperspectral Image Classification", IEEE Geoscience and Remote
Sensing Letters 17(2):277-281, 2020. https://arxiv.org/abs/1902.06701

The layers are exactly the paper's: Conv3d 8 @ 3x3x7, Conv3d 16 @ 3x3x5,
Conv3d 32 @ 3x3x3 (7/5/3 along the spectral axis), all valid padding + ReLU; the 32
feature cubes are stacked into 32 * (C - 12) channels for a Conv2d 64 @ 3x3 + ReLU;
then flatten -> Dense 256 + ReLU + Dropout 0.4 -> Dense 128 + ReLU + Dropout 0.4 ->
Dense K. No batch norm. Weights are initialised as the reference Keras code does
(Glorot-uniform, zero biases). For the paper's Indian Pines setting (p=25, C=30, K=16)
the model has 5,122,176 parameters, as the paper reports.

Adapted for this package:

* Input is (N, C, p, p); the model adds the singleton channel axis itself and runs the
  3-D convolutions on (N, 1, C, p, p) with kernels (7, 3, 3), (5, 3, 3), (3, 3, 3).
* Every shape is derived from ``patch_size`` and ``in_chans``. The four valid 3x3
  convolutions remove 8 pixels, so the paper's network needs p >= 9 (and C >= 13 bands,
  as the 3-D kernels span 7 + 5 + 3 bands). Patches of 5 and 7 are zero-padded to 9x9
  inside the model (after PCA the bands are centred, so zero is the mean); smaller
  patches are refused, as the padded window would be mostly zeros.
* ``hybridsn_2d3d`` is an ordering ablation: the 2-D convolution first (C -> 64 maps),
  then the same three 3-D convolutions over those 64 maps as the depth axis, then the
  same dense head. Flattening its 32 x 52 x (p-8)^2 output directly would put 123 M
  weights into the first dense layer at p=25, so by default the depth axis is
  average-pooled to 2, which makes the head's input 64 * (p-8)^2, the same size as
  HybridSN's; ``depth_pool=0`` keeps the literal, unpooled flatten.

Dense inference (:meth:`HybridSN.forward_dense`): every layer is a valid convolution, an
element-wise activation or (in eval mode) per-pixel dropout, and the 2D3D depth pooling
acts on the spectral axis only, so the network is fully convolutional. Run over the whole
padded scene, the first dense layer is a (p-8)x(p-8) convolution (the Linear weight
reshaped in the order ``forward_features``' output is flattened: channel, row, column) and
the other dense layers are 1x1 convolutions; the logit map equals the patch-by-patch logits
at every pixel. Not for 5 and 7 patches: their zero ring inside the model is not part of the
scene, so a scene-wide convolution would see real neighbours where a patch sees zeros.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from hsi._core.errors import ConfigError
from hsi.models.blocks import PatchClassifier
from hsi.models.registry import register_model

__all__ = ["HybridSN", "HybridSN2D3D"]

#: side of the window the four valid 3x3 convolutions need (each removes 2 pixels).
RECEPTIVE_FIELD = 9
#: row strips a single CPU tile is cut into for the dense trunk (see :func:`_in_row_strips`).
DENSE_STRIPS = 2
#: smallest accepted patch: 5 and 7 are zero-padded to 9 inside the model.
MIN_PATCH_SIZE = 5
#: bands consumed by the valid 3-D kernels (7 - 1) + (5 - 1) + (3 - 1).
_SPECTRAL_LOSS = 12
_PAPER = (
    'S. K. Roy, G. Krishna, S. R. Dubey, B. B. Chaudhuri, "HybridSN: Exploring 3-D-2-D CNN Feature '
    'Hierarchy for Hyperspectral Image Classification", IEEE GRSL 17(2):277-281, 2020, arXiv:1902.06701'
)


def _conv3d_stack() -> nn.Sequential:
    """The paper's three valid 3-D convolutions on (N, 1, D, H, W) -> (N, 32, D-12, H-6, W-6)."""
    return nn.Sequential(
        nn.Conv3d(1, 8, kernel_size=(7, 3, 3)),
        nn.ReLU(),
        nn.Conv3d(8, 16, kernel_size=(5, 3, 3)),
        nn.ReLU(),
        nn.Conv3d(16, 32, kernel_size=(3, 3, 3)),
        nn.ReLU(),
    )


def _dense_head(in_features: int, drop_rate: float) -> nn.Sequential:
    """Flatten -> Dense 256 + ReLU + Dropout -> Dense 128 + ReLU + Dropout (pre-logits)."""
    return nn.Sequential(
        nn.Flatten(1),
        nn.Linear(in_features, 256),
        nn.ReLU(),
        nn.Dropout(drop_rate),
        nn.Linear(256, 128),
        nn.ReLU(),
        nn.Dropout(drop_rate),
    )


def _dense_logits(features: torch.Tensor, head: nn.Module, classifier: nn.Module, side: int) -> torch.Tensor:
    """Applies ``head`` and ``classifier`` as convolutions: (N, F, h, w) maps -> (N, K, h-side+1, w-side+1).

    The first Linear becomes a ``side`` x ``side`` valid convolution, its weight (out, F * side
    * side) reshaped to (out, F, side, side), the order ``nn.Flatten`` gives (channel, row,
    column); later Linears are 1x1 convolutions. ReLU and eval-mode dropout act per element.
    """
    x, kernel = features, side
    for module in [*head.children(), classifier]:
        if isinstance(module, nn.Flatten):
            continue
        if isinstance(module, nn.Linear):
            weight = module.weight.reshape(module.out_features, -1, kernel, kernel)
            x = F.conv2d(x, weight, module.bias)
            kernel = 1
        else:
            x = module(x)
    return x


def _in_row_strips(trunk: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Applies the valid-padding ``trunk`` to a single CPU tile as a batch of row strips.

    PyTorch's CPU convolution runs a single small input (batch 1, N*C*D*H <= 20480) through
    its reference kernel (``slow_conv3d``) instead of oneDNN; the same tile cut into
    :data:`DENSE_STRIPS` strips (each with the trunk's 8-row halo) and passed as a batch takes
    oneDNN: forward plus backward of HybridSN's trunk over Salinas-A at p=25 in 1.5 s
    instead of 4.3 s on one core. The result equals ``trunk(x)``: (1, F, H - 8, W - 8).
    """
    rows = x.shape[2]
    out_rows = rows - (RECEPTIVE_FIELD - 1)
    if x.shape[0] != 1 or x.device.type != "cpu" or out_rows < 2 * DENSE_STRIPS:
        return trunk(x)
    strip = -(-out_rows // DENSE_STRIPS)
    needed = strip * DENSE_STRIPS + RECEPTIVE_FIELD - 1
    if needed > rows:  # zero rows below the tile: they only reach output rows that are cut off
        x = F.pad(x, (0, 0, 0, needed - rows))
    strips = torch.stack([x[0, :, i * strip : (i + 1) * strip + RECEPTIVE_FIELD - 1] for i in range(DENSE_STRIPS)])
    maps = trunk(strips)  # (DENSE_STRIPS, F, strip, W - 8)
    return maps.transpose(0, 1).reshape(1, maps.shape[1], DENSE_STRIPS * strip, maps.shape[3])[:, :, :out_rows]


def _keras_init(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases, the Keras defaults of the reference code."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _spatial_pad(patch_size: int) -> int:
    """Zero padding per side that brings a patch up to the 9x9 the network needs."""
    if patch_size < MIN_PATCH_SIZE:
        raise ConfigError(
            f"HybridSN accepts odd patch sizes >= {MIN_PATCH_SIZE} (it needs a {RECEPTIVE_FIELD}x"
            f"{RECEPTIVE_FIELD} window; 5 and 7 are zero-padded to it); got {patch_size}."
        )
    return max(0, (RECEPTIVE_FIELD - patch_size) // 2)


def _check_dense_input(model: _HybridBase, x: torch.Tensor) -> None:
    """Raises :class:`ConfigError` unless ``x`` is a (N, in_chans, >= p, >= p) tile and dense is exact."""
    if not model.supports_dense:
        raise ConfigError(
            f"{type(model).__name__} at patch size {model.patch_size} pads its patches with zeros inside the "
            f"model, so it has no exact dense pass; use patch-wise inference or a patch size >= {RECEPTIVE_FIELD}."
        )
    if x.ndim != 4 or x.shape[1] != model.in_chans or min(x.shape[2:]) < model.patch_size:
        raise ConfigError(
            f"{type(model).__name__}.forward_dense expects a padded tile (N, {model.in_chans}, H >= "
            f"{model.patch_size}, W >= {model.patch_size}); got {tuple(x.shape)}."
        )


class _HybridBase(PatchClassifier):
    """What HybridSN and its ordering ablation share: their convolutions (:meth:`_features`, unpadded), patches
    of 5 or 7 zero-padded to 9, and a fully convolutional pass over a scene tile."""

    fixed_input_size = True
    pad: int  # zero padding on each side: patches smaller than the receptive field of 9
    feature_side: int  # s = p + 2 * pad - 8, the side of the maps the dense head reads

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w), any h, w >= 9 -> (N, F, h - 8, w - 8): the convolutions."""
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, p, p) -> the convolutions' maps (N, F, p' - 8, p' - 8), p' = max(p, 9)."""
        self._check_input(x)
        if self.pad:
            x = F.pad(x, (self.pad,) * 4)
        return self._features(x)

    @property
    def supports_dense(self) -> bool:
        """Whether :meth:`forward_dense` equals patch-wise :meth:`forward` (not for zero-padded 5/7 patches)."""
        return self.pad == 0

    def forward_dense(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of every pixel of a padded scene tile in one fully convolutional pass.

        Args:
            x: (N, C, h + p - 1, w + p - 1): a tile with a halo of p // 2 on each side.

        Returns:
            (N, K, h, w) logits; ``[:, :, i, j]`` equals :meth:`forward` of the patch whose
            top-left corner is tile pixel (i, j).
        """
        return _dense_logits(self.dense_features(x), self.head, self.classifier, self.feature_side)

    def dense_features(self, x: torch.Tensor) -> torch.Tensor:
        """The convolutions over a padded tile: (N, C, h + p - 1, w + p - 1) -> (N, F, h + s - 1, w + s - 1).

        s = :attr:`feature_side`; the s x s window at (i, j) is what the dense head sees for tile
        pixel (i, j), so training on scene crops gathers windows here.
        """
        _check_dense_input(self, x)
        return _in_row_strips(self._features, x)


class HybridSN(_HybridBase):
    """HybridSN (Roy et al. 2020): three 3-D convolutions, one 2-D convolution, dense head.

    Args:
        in_chans: number of bands C after PCA (the paper: 30 for Indian Pines, 15 for
            the others), at least 13.
        num_classes: number of classes K.
        patch_size: odd patch side p, default=25 (the paper's); >= 5.
        drop_rate: dropout after each hidden dense layer, default=0.4 (the paper's).

    Raises:
        ConfigError: ``in_chans`` < 13 or ``patch_size`` < 5.
    """

    def __init__(self, in_chans: int, num_classes: int, patch_size: int = 25, drop_rate: float = 0.4) -> None:
        super().__init__(in_chans=in_chans, num_classes=num_classes, patch_size=patch_size, drop_rate=drop_rate)
        depth = in_chans - _SPECTRAL_LOSS
        if depth < 1:
            raise ConfigError(
                f"HybridSN needs in_chans >= {_SPECTRAL_LOSS + 1} (its 3-D kernels span 7 + 5 + 3 bands); "
                f"got {in_chans}. Keep more PCA components (the paper uses 30 or 15)."
            )
        self.pad = _spatial_pad(patch_size)
        side = self.feature_side = patch_size + 2 * self.pad - 8
        self.conv3d = _conv3d_stack()
        self.conv2d = nn.Sequential(nn.Conv2d(32 * depth, 64, kernel_size=3), nn.ReLU())
        self.num_features = 64
        self.head = _dense_head(64 * side * side, drop_rate)
        self.head_hidden_size = 128
        self.classifier = self._new_classifier()
        _keras_init(self)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w), any h, w >= 9 -> (N, 64, h - 8, w - 8)."""
        x = self.conv3d(x.unsqueeze(1))  # (N, 32, C - 12, h - 6, w - 6)
        return self.conv2d(x.flatten(1, 2))


class HybridSN2D3D(_HybridBase):
    """Ordering ablation of HybridSN: the 2-D convolution first, then the three 3-D ones.

    Args:
        in_chans: number of bands C (any, >= 1: the 2-D convolution maps them to 64).
        num_classes: number of classes K.
        patch_size: odd patch side p, default=25; >= 5 (5 and 7 are zero-padded to 9).
        drop_rate: dropout after each hidden dense layer, default=0.4.
        depth_pool: length the 52-deep 3-D output is average-pooled to before the
            flatten, default=2 (head input 64 * (p-8)^2, as in HybridSN); 0 flattens
            all 52 without pooling (about 123 M head weights at p=25).

    Raises:
        ConfigError: ``patch_size`` < 5 or ``depth_pool`` outside 0..52.
    """

    def __init__(
        self,
        in_chans: int,
        num_classes: int,
        patch_size: int = 25,
        drop_rate: float = 0.4,
        depth_pool: int = 2,
    ) -> None:
        super().__init__(in_chans=in_chans, num_classes=num_classes, patch_size=patch_size, drop_rate=drop_rate)
        full_depth = 64 - _SPECTRAL_LOSS
        if isinstance(depth_pool, bool) or not isinstance(depth_pool, int) or not 0 <= depth_pool <= full_depth:
            raise ConfigError(f"depth_pool must be an integer in 0..{full_depth} (0 = no pooling); got {depth_pool!r}.")
        self.pad = _spatial_pad(patch_size)
        side = self.feature_side = patch_size + 2 * self.pad - 8
        depth = depth_pool or full_depth
        self.conv2d = nn.Sequential(nn.Conv2d(in_chans, 64, kernel_size=3), nn.ReLU())
        self.conv3d = _conv3d_stack()
        self.depth_pool = nn.AdaptiveAvgPool3d((depth_pool, None, None)) if depth_pool else None
        self.num_features = 32 * depth
        self.head = _dense_head(self.num_features * side * side, drop_rate)
        self.head_hidden_size = 128
        self.classifier = self._new_classifier()
        _keras_init(self)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w), any h, w >= 9 -> (N, 32 * depth, h - 8, w - 8)."""
        x = self.conv2d(x)  # (N, 64, h - 2, w - 2)
        x = self.conv3d(x.unsqueeze(1))  # (N, 32, 52, h - 8, w - 8)
        if self.depth_pool is not None:
            x = self.depth_pool(x)  # pools the depth axis only: per pixel
        return x.flatten(1, 2)


@register_model(paper=_PAPER, min_patch_size=MIN_PATCH_SIZE)
def hybridsn(*, in_chans: int, num_classes: int, patch_size: int = 25, drop_rate: float = 0.4) -> HybridSN:
    """HybridSN, 3-D then 2-D convolutions, exactly as in Roy et al., IEEE GRSL 2020."""
    return HybridSN(in_chans=in_chans, num_classes=num_classes, patch_size=patch_size, drop_rate=drop_rate)


@register_model(paper=_PAPER, min_patch_size=MIN_PATCH_SIZE)
def hybridsn_2d3d(
    *,
    in_chans: int,
    num_classes: int,
    patch_size: int = 25,
    drop_rate: float = 0.4,
    depth_pool: int = 2,
) -> HybridSN2D3D:
    """HybridSN ablation with the 2-D convolution before the 3-D ones (after Roy et al. 2020)."""
    return HybridSN2D3D(
        in_chans=in_chans,
        num_classes=num_classes,
        patch_size=patch_size,
        drop_rate=drop_rate,
        depth_pool=depth_pool,
    )
