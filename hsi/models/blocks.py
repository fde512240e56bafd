"""Pieces shared by the model families: the timm-style base class and the SE block.

* :class:`PatchClassifier` gives every torch model timm's surface (``num_classes``,
  ``in_chans``, ``num_features``, ``forward_features``, ``forward_head``,
  ``get_classifier``, ``reset_classifier``) and one input check with a clear message.
* :class:`SqueezeExcite` is the squeeze-and-excitation block of Hu, Shen & Sun,
  "Squeeze-and-Excitation Networks", CVPR 2018 (https://arxiv.org/abs/1709.01507).
"""

from __future__ import annotations

import torch
from torch import nn

from hsi._core.errors import ConfigError
from hsi._core.validation import check_patch_size

__all__ = ["ConvBnAct", "GlobalPoolHead", "PatchClassifier", "SqueezeExcite", "check_model_args"]


def check_model_args(*, in_chans: int, num_classes: int, patch_size: int) -> None:
    """Raises :class:`ConfigError` unless the sizes a model is built for are valid.

    ``num_classes=0`` is allowed (timm convention: no classifier, the model returns its
    pre-logit features).
    """
    if isinstance(in_chans, bool) or not isinstance(in_chans, int) or in_chans < 1:
        raise ConfigError(f"in_chans must be an integer >= 1; got {in_chans!r}.")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise ConfigError(f"num_classes must be an integer >= 0; got {num_classes!r}.")
    check_patch_size(patch_size)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al., CVPR 2018): rescales channels by learned gates.

    Global average pool -> 1x1 conv (= fully connected) to ``channels // reduction``
    -> ReLU -> 1x1 conv back to ``channels`` -> sigmoid -> multiply the input.

    Args:
        channels: number of channels of the input, shape (N, channels, H, W).
        reduction: squeeze ratio, default=16 (the paper's r).
        min_channels: lower bound on the squeezed width, default=8, so narrow
            layers (e.g. 32 channels -> 2) keep a usable bottleneck.
        squeeze_channels: the squeezed width, default=None (from ``reduction`` and
            ``min_channels``); inverted-residual blocks size it from the block's input
            width instead of the expanded one (EfficientNet, MnasNet).
    """

    def __init__(
        self, channels: int, reduction: int = 16, min_channels: int = 8, squeeze_channels: int | None = None
    ) -> None:
        super().__init__()
        squeezed = squeeze_channels if squeeze_channels is not None else max(min_channels, channels // reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeezed, kernel_size=1)
        self.act = nn.ReLU()
        self.expand = nn.Conv2d(squeezed, channels, kernel_size=1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns ``x`` scaled per channel, same shape (N, C, H, W)."""
        scale: torch.Tensor = self.gate(self.expand(self.act(self.reduce(self.pool(x)))))
        return x * scale


class ConvBnAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> activation; ``padding`` keeps the size at stride 1.

    Args:
        in_chs: input channels.
        out_chs: output channels.
        kernel_size: square kernel side, default=3.
        stride: default=1.
        groups: default=1 (``groups=in_chs`` makes a depthwise convolution).
        dilation: default=1.
        act: activation module class, default=``nn.ReLU``; ``None`` = no activation
            (a linear bottleneck).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        dilation: int = 1,
        act: type[nn.Module] | None = nn.ReLU,
    ) -> None:
        padding = dilation * (kernel_size - 1) // 2
        layers: list[nn.Module] = [
            nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding, dilation=dilation, groups=groups, bias=False),
            nn.BatchNorm2d(out_chs),
        ]
        if act is not None:
            layers.append(act())
        super().__init__(*layers)


class PatchClassifier(nn.Module):
    """Base class of the torch models: timm's attribute and method contract.

    Subclasses build their layers, set ``num_features`` (channels of the
    :meth:`forward_features` output), ``head_hidden_size`` (width of the pre-logit
    features), ``head`` and ``classifier``, and implement :meth:`forward_features`.

    Args:
        in_chans: number of input bands C.
        num_classes: number of classes K (0 = no classifier).
        patch_size: odd patch side p the model is built for.
        drop_rate: dropout probability before the classifier.
    """

    #: whether the input must be exactly (N, in_chans, patch_size, patch_size); models
    #: whose head flattens a fixed-size map set this, global-pool models accept any size.
    fixed_input_size: bool = False
    #: the final layer (set by subclasses after their other layers, so it comes last in
    #: ``state_dict``): ``nn.Linear(head_hidden_size, num_classes)`` or ``nn.Identity``.
    classifier: nn.Module
    #: what :meth:`forward_head` applies before the classifier (set by subclasses).
    head: nn.Module

    def __init__(self, *, in_chans: int, num_classes: int, patch_size: int, drop_rate: float) -> None:
        super().__init__()
        check_model_args(in_chans=in_chans, num_classes=num_classes, patch_size=patch_size)
        if not 0.0 <= drop_rate < 1.0:
            raise ConfigError(f"drop_rate must be in [0, 1); got {drop_rate!r}.")
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.patch_size = patch_size
        self.drop_rate = drop_rate
        self.num_features = 0
        self.head_hidden_size = 0

    def _add_pooled_head(self, num_features: int) -> None:
        """Sets a global-average-pool head over ``num_features`` channels and the classifier.

        Called by the global-pool models once their other layers exist, so the classifier
        comes last in ``state_dict``.
        """
        self.num_features = self.head_hidden_size = num_features
        self.head = GlobalPoolHead(self.drop_rate)
        self.classifier = self._new_classifier()

    def _check_input(self, x: torch.Tensor) -> None:
        """Raises :class:`ConfigError` unless ``x`` is (N, in_chans, p, p) for this model."""
        ok = x.ndim == 4 and x.shape[1] == self.in_chans
        if ok and self.fixed_input_size:
            ok = x.shape[2] == x.shape[3] == self.patch_size
        if not ok:
            p = self.patch_size if self.fixed_input_size else "H"
            q = self.patch_size if self.fixed_input_size else "W"
            raise ConfigError(
                f"{type(self).__name__} expects input of shape (N, {self.in_chans}, {p}, {q}); "
                f"got {tuple(x.shape)}. Build the model with the data's band count and patch size."
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Maps (N, in_chans, p, p) to the feature map before the head."""
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """``self.head`` (pooling/flatten, dense layers, dropout), then the classifier.

        Returns:
            (N, head_hidden_size) pre-logits if ``pre_logits``, else (N, num_classes) logits.
        """
        x = self.head(x)
        return x if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Maps patches of shape (N, in_chans, p, p) to logits of shape (N, num_classes)."""
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        """The final layer that produces the logits."""
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        """Replaces the classifier with a fresh one for ``num_classes`` (0 = identity)."""
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
            raise ConfigError(f"num_classes must be an integer >= 0; got {num_classes!r}.")
        self.num_classes = num_classes
        self.classifier = self._new_classifier()

    def _new_classifier(self) -> nn.Module:
        """``nn.Linear(head_hidden_size, num_classes)``, or ``nn.Identity`` when ``num_classes`` is 0."""
        return nn.Linear(self.head_hidden_size, self.num_classes) if self.num_classes > 0 else nn.Identity()


class GlobalPoolHead(nn.Module):
    """Global average pool -> flatten -> dropout: the pre-logits of the global-pool models."""

    def __init__(self, drop_rate: float) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.drop = nn.Dropout(drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C)."""
        x = self.drop(self.flatten(self.pool(x)))
        return x
