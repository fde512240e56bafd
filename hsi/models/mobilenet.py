"""MobileNet V1 and V2 for patches: depthwise-separable and inverted-residual networks.

Papers:

* A. G. Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile
  Vision Applications", 2017. https://arxiv.org/abs/1704.04861
* M. Sandler, A. Howard, M. Zhu, A. Zhmoginov, L.-C. Chen, "MobileNetV2: Inverted
  Residuals and Linear Bottlenecks", CVPR 2018. https://arxiv.org/abs/1801.04381

Adapted for HSI patches (N, C, p, p), C = PCA bands:

* The first convolution takes ``in_chans`` bands and has stride 1 (ImageNet: 3 channels,
  stride 2); three of the network's stages keep stride 2, so a 25x25 patch ends at 4x4
  (ImageNet's 224 -> 7 would leave nothing of a patch). The other stride-2 layers of
  the papers have stride 1. All convolutions pad, so any odd patch size >= 1 works.
* V1 keeps the paper's 13 depthwise-separable layers (depthwise 3x3 + BN + ReLU, then
  pointwise 1x1 + BN + ReLU) at width multiplier 0.5 (the paper's alpha; 512 output
  features), suited to ~10^3 training patches.
* V2 keeps the paper's bottleneck table (t, c, n) and last 1x1 convolution to 1280
  channels, ReLU6 and linear (activation-free) projections; optional squeeze-and-
  excitation after the depthwise convolution on the expanded channels, squeezed to a
  quarter of the block's input width (the placement and ratio of MnasNet /
  EfficientNet); SE is not in the V2 paper.
* Both end in global average pool -> dropout (default 0.2) -> linear.
"""

from __future__ import annotations

from torch import Tensor, nn

from hsi._core.errors import ConfigError
from hsi.models.blocks import ConvBnAct, PatchClassifier, SqueezeExcite
from hsi.models.registry import register_model

__all__ = ["DepthwiseSeparable", "InvertedResidual", "MobileNetV1", "MobileNetV2"]

_V1_PAPER = (
    'A. G. Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision '
    'Applications", 2017, arXiv:1704.04861'
)
_V2_PAPER = (
    'M. Sandler, A. Howard, M. Zhu, A. Zhmoginov, L.-C. Chen, "MobileNetV2: Inverted Residuals and '
    'Linear Bottlenecks", CVPR 2018, arXiv:1801.04381'
)


def _make_divisible(value: float, divisor: int = 8) -> int:
    """Rounds a scaled width to a multiple of ``divisor``, never below 90% of ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _check_width(width_mult: float) -> None:
    if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) or not width_mult > 0:
        raise ConfigError(f"width_mult must be a number > 0; got {width_mult!r}.")


def _init_weights(module: nn.Module) -> None:
    """He-normal (fan-out) convolutions, unit BN, N(0, 0.01) linear layers (as torchvision)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


class DepthwiseSeparable(nn.Sequential):
    """MobileNet V1 layer: depthwise 3x3 conv + BN + ReLU, then pointwise 1x1 conv + BN + ReLU."""

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1) -> None:
        super().__init__(
            ConvBnAct(in_chs, in_chs, kernel_size=3, stride=stride, groups=in_chs),
            ConvBnAct(in_chs, out_chs, kernel_size=1),
        )


class InvertedResidual(nn.Module):
    """MobileNet V2 bottleneck: expand 1x1 (ReLU6) -> depthwise 3x3 (ReLU6) -> linear project 1x1.

    Args:
        in_chs: input channels.
        out_chs: output channels.
        stride: stride of the depthwise convolution.
        expand_ratio: expansion factor t (1 = no expansion layer).
        se: squeeze-and-excitation after the depthwise convolution, default=False.
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int, expand_ratio: int, se: bool = False) -> None:
        super().__init__()
        hidden = in_chs * expand_ratio
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBnAct(in_chs, hidden, kernel_size=1, act=nn.ReLU6))
        layers.append(ConvBnAct(hidden, hidden, kernel_size=3, stride=stride, groups=hidden, act=nn.ReLU6))
        if se:
            layers.append(SqueezeExcite(hidden, squeeze_channels=max(8, in_chs // 4)))
        layers.append(ConvBnAct(hidden, out_chs, kernel_size=1, act=None))
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_chs == out_chs

    def forward(self, x: Tensor) -> Tensor:
        """(N, in_chs, H, W) -> (N, out_chs, H / stride, W / stride)."""
        out: Tensor = self.conv(x)
        return x + out if self.use_residual else out


class MobileNetV1(PatchClassifier):
    """MobileNet V1 (Howard et al. 2017) on (N, C, p, p) patches.

    Args:
        in_chans: number of bands C.
        num_classes: number of classes K.
        patch_size: odd patch side p, default=25; any odd size >= 1 works.
        drop_rate: dropout before the classifier, default=0.2.
        width_mult: the paper's width multiplier alpha, default=0.5.

    Raises:
        ConfigError: ``width_mult`` is not > 0.
    """

    #: (output channels at alpha=1, stride) of the 13 depthwise-separable layers; the
    #: paper's strides with the last stride-2 layer set to 1 (three stride-2 layers).
    cfg: tuple[tuple[int, int], ...] = (
        (64, 1),
        (128, 2),
        (128, 1),
        (256, 2),
        (256, 1),
        (512, 2),
        (512, 1),
        (512, 1),
        (512, 1),
        (512, 1),
        (512, 1),
        (1024, 1),
        (1024, 1),
    )

    def __init__(
        self,
        in_chans: int,
        num_classes: int,
        patch_size: int = 25,
        drop_rate: float = 0.2,
        width_mult: float = 0.5,
    ) -> None:
        super().__init__(in_chans=in_chans, num_classes=num_classes, patch_size=patch_size, drop_rate=drop_rate)
        _check_width(width_mult)
        prev = _make_divisible(32 * width_mult)
        layers: list[nn.Module] = [ConvBnAct(in_chans, prev, kernel_size=3, stride=1)]
        for chs, stride in self.cfg:
            out = _make_divisible(chs * width_mult)
            layers.append(DepthwiseSeparable(prev, out, stride))
            prev = out
        self.features = nn.Sequential(*layers)
        self._add_pooled_head(prev)
        _init_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        """(N, C, p, p) -> (N, num_features, ceil(p / 8), ceil(p / 8))."""
        self._check_input(x)
        x = self.features(x)
        return x


class MobileNetV2(PatchClassifier):
    """MobileNet V2 (Sandler et al. 2018) on (N, C, p, p) patches.

    Args:
        in_chans: number of bands C.
        num_classes: number of classes K.
        patch_size: odd patch side p, default=25; any odd size >= 1 works.
        drop_rate: dropout before the classifier, default=0.2 (as torchvision).
        se: squeeze-and-excitation in every bottleneck, default=False.
        width_mult: width multiplier, default=1.0.

    Raises:
        ConfigError: ``width_mult`` is not > 0.
    """

    #: (expansion t, channels c, repeats n, stride s): the paper's Table 2 with the
    #: stride-2 layers of stages 2 and 4 set to 1 (the stem has stride 1 too).
    cfg: tuple[tuple[int, int, int, int], ...] = (
        (1, 16, 1, 1),
        (6, 24, 2, 1),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    )

    def __init__(
        self,
        in_chans: int,
        num_classes: int,
        patch_size: int = 25,
        drop_rate: float = 0.2,
        se: bool = False,
        width_mult: float = 1.0,
    ) -> None:
        super().__init__(in_chans=in_chans, num_classes=num_classes, patch_size=patch_size, drop_rate=drop_rate)
        _check_width(width_mult)
        prev = _make_divisible(32 * width_mult)
        layers: list[nn.Module] = [ConvBnAct(in_chans, prev, kernel_size=3, stride=1, act=nn.ReLU6)]
        for t, c, n, s in self.cfg:
            out = _make_divisible(c * width_mult)
            for i in range(n):
                layers.append(InvertedResidual(prev, out, s if i == 0 else 1, t, se=se))
                prev = out
        last = _make_divisible(1280 * max(1.0, width_mult))
        layers.append(ConvBnAct(prev, last, kernel_size=1, act=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self._add_pooled_head(last)
        _init_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        """(N, C, p, p) -> (N, 1280, ceil(p / 8), ceil(p / 8))."""
        self._check_input(x)
        x = self.features(x)
        return x


@register_model(paper=_V1_PAPER)
def mobilenet_v1(
    *, in_chans: int, num_classes: int, patch_size: int = 25, drop_rate: float = 0.2, width_mult: float = 0.5
) -> MobileNetV1:
    """MobileNet V1, depthwise-separable convolutions, width 0.5 (Howard et al. 2017)."""
    return MobileNetV1(
        in_chans=in_chans, num_classes=num_classes, patch_size=patch_size, drop_rate=drop_rate, width_mult=width_mult
    )


@register_model(paper=_V2_PAPER)
def mobilenet_v2(
    *,
    in_chans: int,
    num_classes: int,
    patch_size: int = 25,
    drop_rate: float = 0.2,
    se: bool = False,
    width_mult: float = 1.0,
) -> MobileNetV2:
    """MobileNet V2, inverted residuals with linear bottlenecks (Sandler et al., CVPR 2018)."""
    return MobileNetV2(
        in_chans=in_chans,
        num_classes=num_classes,
        patch_size=patch_size,
        drop_rate=drop_rate,
        se=se,
        width_mult=width_mult,
    )
