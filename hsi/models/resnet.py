"""Residual networks for patches: CIFAR-style ResNet, SE-ResNet and a DRN-C.

Papers:

* K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition",
  CVPR 2016. https://arxiv.org/abs/1512.03385 (the CIFAR-10 networks of section 4.2).
* J. Hu, L. Shen, G. Sun, "Squeeze-and-Excitation Networks", CVPR 2018.
  https://arxiv.org/abs/1709.01507
* F. Yu, V. Koltun, T. Funkhouser, "Dilated Residual Networks", CVPR 2017.
  https://arxiv.org/abs/1705.09914

Adapted for HSI patches (N, C, p, p), C = PCA bands:

* ResNet follows the CIFAR design, not the ImageNet one: a 3x3 stride-1 stem (no 7x7 /
  max-pool), three stages of BasicBlocks (2 each, widths 32/64/128, strides 1/2/2, so a
  25x25 patch ends at 7x7), global average pool, dropout, linear. Shortcuts that change
  shape use a 1x1 convolution + BN (the paper's option B) instead of zero padding.
* SE-ResNet puts a squeeze-and-excitation block (reduction 16, at least 8 channels) on
  the residual branch, before the addition, as in Hu et al. Fig. 3.
* DRN keeps DRN-C's level structure (drn_c_26: levels of 1, 1, 2, 2, 2, 2, 1, 1 blocks) but
  drops one stride-2 level and narrows the channels (16-32-64-128): stride 2 at levels 2
  and 3 (output stride 4: 25x25 -> 7x7), then levels with dilation 2 and 4 instead of
  stride, then the degridding levels: blocks without residual connection at dilation 2,
  then 1. Global average pool and a linear layer replace the paper's 1x1-conv
  classifier.
* Every convolution pads so that any odd patch size >= 1 works.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from hsi._core.errors import ConfigError
from hsi.models.blocks import ConvBnAct, PatchClassifier, SqueezeExcite
from hsi.models.registry import register_model

__all__ = ["DRN", "BasicBlock", "ResNet"]

_RESNET_PAPER = (
    'K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", CVPR 2016, arXiv:1512.03385'
)
_SE_PAPER = 'J. Hu, L. Shen, G. Sun, "Squeeze-and-Excitation Networks", CVPR 2018, arXiv:1709.01507'
_DRN_PAPER = 'F. Yu, V. Koltun, T. Funkhouser, "Dilated Residual Networks", CVPR 2017, arXiv:1705.09914'


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 projection) shortcut.

    Args:
        in_chs: input channels.
        out_chs: output channels.
        stride: stride of the first convolution, default=1.
        dilation: dilations of the two convolutions, default=(1, 1).
        residual: add the shortcut, default=True; ``False`` gives DRN's degridding
            block (two plain conv-BN-ReLU layers).
        se: squeeze-and-excitation on the branch before the addition, default=False.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int = 1,
        dilation: tuple[int, int] = (1, 1),
        residual: bool = True,
        se: bool = False,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chs, out_chs, 3, stride, padding=dilation[0], dilation=dilation[0], bias=False)
        self.bn1 = nn.BatchNorm2d(out_chs)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_chs, out_chs, 3, 1, padding=dilation[1], dilation=dilation[1], bias=False)
        self.bn2 = nn.BatchNorm2d(out_chs)
        self.se = SqueezeExcite(out_chs) if se else None
        self.residual = residual
        self.shortcut: nn.Module | None = None
        if residual and (stride != 1 or in_chs != out_chs):
            self.shortcut = ConvBnAct(in_chs, out_chs, kernel_size=1, stride=stride, act=None)
        self.act2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_chs, H, W) -> (N, out_chs, H / stride, W / stride)."""
        out: torch.Tensor = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        if self.se is not None:
            out = self.se(out)
        if self.residual:
            out = out + (x if self.shortcut is None else self.shortcut(x))
        out = self.act2(out)
        return out


def _init_weights(module: nn.Module) -> None:
    """He-normal (fan-out) convolutions and unit BN, as in the reference implementations."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class ResNet(PatchClassifier):
    """CIFAR-style ResNet (He et al. 2016) on (N, C, p, p) patches, optionally with SE.

    Args:
        in_chans: number of bands C.
        num_classes: number of classes K.
        patch_size: odd patch side p, default=25; any odd size >= 1 works.
        drop_rate: dropout before the classifier, default=0.0.
        se: squeeze-and-excitation in every block (SE-ResNet), default=False.
        widths: channels of the stem and the three stages, default=(32, 64, 128).
        depths: BasicBlocks per stage, default=(2, 2, 2).

    Raises:
        ConfigError: ``widths`` and ``depths`` differ in length or are empty.
    """

    def __init__(
        self,
        in_chans: int,
        num_classes: int,
        patch_size: int = 25,
        drop_rate: float = 0.0,
        se: bool = False,
        widths: Sequence[int] = (32, 64, 128),
        depths: Sequence[int] = (2, 2, 2),
    ) -> None:
        super().__init__(in_chans=in_chans, num_classes=num_classes, patch_size=patch_size, drop_rate=drop_rate)
        if not widths or len(widths) != len(depths):
            raise ConfigError(f"widths and depths must have the same non-zero length; got {widths}, {depths}.")
        self.stem = ConvBnAct(in_chans, widths[0], kernel_size=3)
        stages: list[nn.Module] = []
        prev = widths[0]
        for i, (width, depth) in enumerate(zip(widths, depths, strict=True)):
            stride = 1 if i == 0 else 2
            blocks = [
                BasicBlock(prev if j == 0 else width, width, stride if j == 0 else 1, se=se) for j in range(depth)
            ]
            stages.append(nn.Sequential(*blocks))
            prev = width
        self.stages = nn.Sequential(*stages)
        self._add_pooled_head(prev)
        _init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, p, p) -> (N, 128, ceil(p / 4), ceil(p / 4)) with the default widths."""
        self._check_input(x)
        x = self.stages(self.stem(x))
        return x


class DRN(PatchClassifier):
    """DRN-C (Yu et al. 2017) for patches: stride early, dilation 2 and 4 later, degridding.

    Levels (blocks x channels): stem conv 3x3 (16); 1: 1 x 16; 2: 1 x 32, stride 2;
    3: 2 x 64, stride 2; 4: 2 x 128, dilation 2; 5: 2 x 128, dilation 4; 6: 1 x 128,
    dilation 2, no residual; 7: 1 x 128, dilation 1, no residual.

    Args:
        in_chans: number of bands C.
        num_classes: number of classes K.
        patch_size: odd patch side p, default=25; any odd size >= 1 works.
        drop_rate: dropout before the classifier, default=0.0.
        se: squeeze-and-excitation in every block, default=False.
        channels: widths of levels 1..7, default=(16, 32, 64, 128, 128, 128, 128).
    """

    #: (blocks, stride, dilation, residual) of levels 1..7.
    LEVELS: tuple[tuple[int, int, int, bool], ...] = (
        (1, 1, 1, True),
        (1, 2, 1, True),
        (2, 2, 1, True),
        (2, 1, 2, True),
        (2, 1, 4, True),
        (1, 1, 2, False),
        (1, 1, 1, False),
    )

    def __init__(
        self,
        in_chans: int,
        num_classes: int,
        patch_size: int = 25,
        drop_rate: float = 0.0,
        se: bool = False,
        channels: Sequence[int] = (16, 32, 64, 128, 128, 128, 128),
    ) -> None:
        super().__init__(in_chans=in_chans, num_classes=num_classes, patch_size=patch_size, drop_rate=drop_rate)
        if len(channels) != len(self.LEVELS):
            raise ConfigError(f"DRN needs {len(self.LEVELS)} channel widths; got {len(channels)}.")
        self.stem = ConvBnAct(in_chans, channels[0], kernel_size=3)
        layers: list[nn.Module] = []
        prev = channels[0]
        for width, (blocks, stride, dilation, residual) in zip(channels, self.LEVELS, strict=True):
            level = []
            for j in range(blocks):
                level.append(
                    BasicBlock(
                        prev,
                        width,
                        stride if j == 0 else 1,
                        dilation=(dilation, dilation),
                        residual=residual,
                        se=se,
                    )
                )
                prev = width
            layers.append(nn.Sequential(*level))
        self.levels = nn.Sequential(*layers)
        self._add_pooled_head(prev)
        _init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, p, p) -> (N, 128, ceil(p / 4), ceil(p / 4)) with the default widths."""
        self._check_input(x)
        x = self.levels(self.stem(x))
        return x


@register_model(paper=_RESNET_PAPER)
def resnet(
    *, in_chans: int, num_classes: int, patch_size: int = 25, drop_rate: float = 0.0, se: bool = False
) -> ResNet:
    """CIFAR-style ResNet, 3 stages of 2 BasicBlocks (He et al., CVPR 2016)."""
    return ResNet(in_chans=in_chans, num_classes=num_classes, patch_size=patch_size, drop_rate=drop_rate, se=se)


@register_model(paper=_SE_PAPER)
def se_resnet(*, in_chans: int, num_classes: int, patch_size: int = 25, drop_rate: float = 0.0) -> ResNet:
    """CIFAR-style ResNet with squeeze-and-excitation blocks (Hu et al., CVPR 2018)."""
    return ResNet(in_chans=in_chans, num_classes=num_classes, patch_size=patch_size, drop_rate=drop_rate, se=True)


@register_model(paper=_DRN_PAPER)
def drn(*, in_chans: int, num_classes: int, patch_size: int = 25, drop_rate: float = 0.0, se: bool = False) -> DRN:
    """Dilated residual network, DRN-C style with degridding (Yu et al., CVPR 2017)."""
    return DRN(in_chans=in_chans, num_classes=num_classes, patch_size=patch_size, drop_rate=drop_rate, se=se)
