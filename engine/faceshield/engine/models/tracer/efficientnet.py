"""EfficientNet backbone with the module names of the official TRACER (lukemelas layout):
`_conv_stem`, `_bn0`, `_blocks.N._expand_conv/_bn0/_depthwise_conv/_bn1/_se_reduce/_se_expand/
_project_conv/_bn2`, plus TRACER's `Frequency_Edge_Module1`. There is no classification head
(`_conv_head`, `_fc`): TRACER never builds one, so its checkpoints have none.

Inference only: drop-connect (stochastic depth) is an identity at evaluation and is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .attention import FrequencyEdgeModule
from .layers import SameConv2d, output_size
from .variants import (
    B0_STAGES,
    BACKBONE_BN_EPS,
    BACKBONE_BN_MOMENTUM,
    FREQUENCY_RADIUS,
    SE_RATIO,
    STEM_FILTERS,
    TracerVariant,
)


@dataclass(frozen=True)
class BlockSpec:
    kernel: int
    stride: int
    expand: int
    in_filters: int
    out_filters: int
    reference_size: int  # spatial size at the block's input for the native resolution


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def block_specs(variant: TracerVariant) -> list[list[BlockSpec]]:
    """The scaled blocks, stage by stage: widths and repeats scaled, the first block of a stage
    carrying its stride and width change, the rest stride 1 at the stage's output width."""
    size = _ceil_div(variant.native_resolution, 2)  # after the stride-2 stem
    stages = []
    for repeats, kernel, stride, expand, fin, fout in B0_STAGES:
        fin, fout = variant.round_filters(fin), variant.round_filters(fout)
        blocks = [BlockSpec(kernel, stride, expand, fin, fout, size)]
        size = _ceil_div(size, stride)
        blocks += [BlockSpec(kernel, 1, expand, fout, fout, size) for _ in range(variant.round_repeats(repeats) - 1)]
        stages.append(blocks)
    return stages


def stage_ends(variant: TracerVariant) -> tuple[list[int], list[int]]:
    """(block index, width) of the last block of every stage."""
    idx, ends, widths = -1, [], []
    for blocks in block_specs(variant):
        idx += len(blocks)
        ends.append(idx)
        widths.append(blocks[-1].out_filters)
    return ends, widths


def decoder_taps(variant: TracerVariant) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """TRACER taps the ends of stages 2, 3, 5 and 7 (strides 4, 8, 16, 32)."""
    ends, widths = stage_ends(variant)
    picks = (1, 2, 4, 6)
    return tuple(ends[i] for i in picks), tuple(widths[i] for i in picks)


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck: [1x1 expand -> BN -> swish] -> depthwise kxk -> BN -> swish ->
    squeeze-excitation -> 1x1 project -> BN, plus the identity when shape allows."""

    def __init__(self, spec: BlockSpec):
        super().__init__()
        self.spec = spec
        inp, oup = spec.in_filters, spec.in_filters * spec.expand

        def bn(c: int) -> nn.BatchNorm2d:
            return nn.BatchNorm2d(c, momentum=BACKBONE_BN_MOMENTUM, eps=BACKBONE_BN_EPS)

        if spec.expand != 1:
            self._expand_conv = SameConv2d(inp, oup, 1, bias=False, reference_size=spec.reference_size)
            self._bn0 = bn(oup)
        self._depthwise_conv = SameConv2d(
            oup, oup, spec.kernel, spec.stride, groups=oup, bias=False, reference_size=spec.reference_size
        )
        self._bn1 = bn(oup)
        squeezed = max(1, int(inp * SE_RATIO))
        self._se_reduce = nn.Conv2d(oup, squeezed, 1)  # 1x1 on a 1x1 map: "same" padding is 0
        self._se_expand = nn.Conv2d(squeezed, oup, 1)
        self._project_conv = nn.Conv2d(oup, spec.out_filters, 1, bias=False)
        self._bn2 = bn(spec.out_filters)
        # The official "memory-efficient swish" is a custom autograd Function (does not export);
        # in the forward pass it is x * sigmoid(x), which is SiLU.
        self._swish = nn.SiLU()
        self.skip = spec.stride == 1 and inp == spec.out_filters

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.spec.expand != 1:
            x = self._swish(self._bn0(self._expand_conv(x)))
        x = self._swish(self._bn1(self._depthwise_conv(x)))
        s = F.adaptive_avg_pool2d(x, 1)
        s = self._se_expand(self._swish(self._se_reduce(s)))
        x = torch.sigmoid(s) * x
        x = self._bn2(self._project_conv(x))
        return x + inputs if self.skip else x


class EfficientNetEncoder(nn.Module):
    """Stem and MBConv blocks; `forward` returns the four tapped features (the first one after
    the frequency edge module) and the edge map at the tapped resolution."""

    def __init__(self, variant: TracerVariant, input_size: int | None = None):
        super().__init__()
        self.variant = variant
        self.block_idx, self.channels = decoder_taps(variant)
        stem = variant.round_filters(STEM_FILTERS)
        self._conv_stem = SameConv2d(3, stem, 3, 2, bias=False, reference_size=variant.native_resolution)
        self._bn0 = nn.BatchNorm2d(stem, momentum=BACKBONE_BN_MOMENTUM, eps=BACKBONE_BN_EPS)
        self._blocks = nn.ModuleList(MBConvBlock(s) for stage in block_specs(variant) for s in stage)
        self._swish = nn.SiLU()
        edge_size = None if input_size is None else self.tap_size(input_size)
        self.Frequency_Edge_Module1 = FrequencyEdgeModule(FREQUENCY_RADIUS, self.channels[0], edge_size)

    def tap_size(self, input_size: int) -> tuple[int, int]:
        """Spatial size of the first tapped feature for a square input of `input_size`."""
        size = output_size(input_size, self._conv_stem)
        for block in self._blocks[: self.block_idx[0] + 1]:
            assert isinstance(block, MBConvBlock)  # a ModuleList's items are typed Module
            size = output_size(size, block._depthwise_conv)
        return size, size

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        x = self._swish(self._bn0(self._conv_stem(x)))
        taps: list[torch.Tensor] = []
        edge = None
        for idx, block in enumerate(self._blocks):
            x = block(x)
            if idx == self.block_idx[0]:
                x, edge = self.Frequency_Edge_Module1(x)
            if idx in self.block_idx:
                taps.append(x)
            if idx == self.block_idx[-1]:
                break  # the taps end at the last block; nothing after it is used
        assert edge is not None  # the edge module sits at the first tap, before the last
        return taps, edge
