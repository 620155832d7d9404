"""Convolution building blocks with the official module names (so state-dict keys match).

`BasicConv2d`, `DWConv` and `DWSConv` are TRACER's decoder blocks: convolution (no bias),
batch norm, SELU. `SameConv2d` is EfficientNet's TensorFlow-style "same" convolution.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) zero padding that makes a convolution output ceil(size / stride)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "same" padding computed once, for a fixed reference size.

    The official backbone is built with the EfficientNet native resolution (224 for B0, 456 for
    B5, ...) and pads every layer as "same" *for that resolution*, whatever size it is run at.
    At stride 2 an odd reference size pads symmetrically where the actual (even) size would pad
    only after, so the padding is a property of the architecture, not of the input. Computing
    it once also keeps the graph free of shape arithmetic, which is what makes it export.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        bias: bool = True,
        reference_size: int = 224,
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=0, groups=groups, bias=bias)
        top, bottom = same_padding(reference_size, kernel_size, stride)
        # Square kernels and square reference sizes: the same padding on both axes.
        self.pad: tuple[int, int, int, int] | None = (top, bottom, top, bottom)  # F.pad order: left, right, top, bottom
        if top == bottom:  # symmetric: let the convolution pad (one op fewer in the graph)
            self.padding = (top, top)
            self.pad = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad is not None:
            x = F.pad(x, self.pad)
        return super().forward(x)


def output_size(size: int, conv: nn.Conv2d) -> int:
    """Spatial output size of a square `conv` (including any `SameConv2d` pre-padding)."""
    same_pad = getattr(conv, "pad", None)  # SameConv2d's own padding; None where the convolution pads
    if same_pad is not None:
        pad = sum(same_pad[:2])
    else:
        assert not isinstance(conv.padding, str)  # a number per side here, never "same" or "valid"
        pad = 2 * conv.padding[0]
    k, s, d = conv.kernel_size[0], conv.stride[0], conv.dilation[0]
    return (size + pad - d * (k - 1) - 1) // s + 1


class BasicConv2d(nn.Module):
    """conv (no bias) -> BN -> SELU."""

    def __init__(self, in_channel: int, out_channel: int, kernel_size, padding=0, dilation=1):
        super().__init__()
        self.conv = nn.Conv2d(in_channel, out_channel, kernel_size, padding=padding, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(out_channel)
        self.selu = nn.SELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.selu(self.bn(self.conv(x)))


class DWConv(nn.Module):
    """Depthwise conv (no bias) -> BN -> SELU."""

    def __init__(self, in_channel: int, out_channel: int, kernel: int, dilation: int, padding: int):
        super().__init__()
        self.DWConv = nn.Conv2d(
            in_channel, out_channel, kernel, padding=padding, groups=in_channel, dilation=dilation, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channel)
        self.selu = nn.SELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.selu(self.bn(self.DWConv(x)))


class DWSConv(nn.Module):
    """Depthwise-separable: depthwise conv -> BN -> SELU -> pointwise conv -> BN -> SELU."""

    def __init__(self, in_channel: int, out_channel: int, kernel: int, padding: int, kernels_per_layer: int = 1):
        super().__init__()
        mid = in_channel * kernels_per_layer
        self.DWConv = nn.Conv2d(in_channel, mid, kernel, padding=padding, groups=in_channel, bias=False)
        self.bn = nn.BatchNorm2d(mid)
        self.selu = nn.SELU()
        self.PWConv = nn.Conv2d(mid, out_channel, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.selu(self.bn(self.DWConv(x)))
        return self.selu(self.bn2(self.PWConv(x)))


def dilated_pyramid(channels: int, out_each: int) -> nn.ModuleList:
    """The four parallel branches shared by the edge module and object attention: a depthwise
    conv (1x1, or 3x3 at dilation 1, 3, 5) then a 1x1 BasicConv2d to `out_each` channels.
    Returned as [DWConv1..DWConv4] in official order."""
    specs = ((1, 0, 1), (3, 1, 1), (3, 3, 3), (3, 5, 5))  # kernel, padding, dilation
    return nn.ModuleList(
        nn.Sequential(DWConv(channels, channels, kernel=k, padding=p, dilation=d), BasicConv2d(channels, out_each, 1))
        for k, p, d in specs
    )
