"""TRACER's decoder-side modules, with the official attribute names: union attention (UAM),
the frequency edge module (MEAM), receptive-field blocks, multi-level aggregation and object
attention (OAM). Inference semantics: dropout is an identity, batch norm uses running stats.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import BasicConv2d, DWSConv, dilated_pyramid
from .spectral import FrequencyHighPass, quantile_lastdim
from .variants import DENOISE, GAMMA


def _conv1x1(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, bias=False)


class UnionAttentionModule(nn.Module):
    """Channel tracing (self-attention over globally pooled channels) and, unless
    `only_channel_tracing`, spatial self-attention over the channels whose weight exceeds the
    `gamma` quantile. Returns one map (N, 1, H, W)."""

    def __init__(self, n_channels: int, only_channel_tracing: bool = False, gamma: float = GAMMA):
        super().__init__()
        self.gamma = gamma
        self.bn = nn.BatchNorm2d(n_channels)
        # Official: Sequential(BatchNorm2d, Dropout3d(gamma)); dropout is the identity at
        # inference, and an Identity keeps the key `norm.0.*` without a training-only op.
        self.norm = nn.Sequential(nn.BatchNorm2d(n_channels), nn.Identity())
        self.channel_q = _conv1x1(n_channels, n_channels)
        self.channel_k = _conv1x1(n_channels, n_channels)
        self.channel_v = _conv1x1(n_channels, n_channels)
        self.fc = _conv1x1(n_channels, n_channels)
        self.only_channel_tracing = only_channel_tracing
        if not only_channel_tracing:
            self.spatial_q = _conv1x1(n_channels, 1)
            self.spatial_k = _conv1x1(n_channels, 1)
            self.spatial_v = _conv1x1(n_channels, 1)

    def Channel_Tracer(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: N802 (official name)
        """x * a + x with a = sigmoid(fc(softmax(q k^T) v)) over pooled channels; returns (out, a)."""
        pooled = self.norm(x.mean(dim=(2, 3), keepdim=True))  # (N, C, 1, 1)
        q = self.channel_q(pooled).squeeze(-1)  # (N, C, 1)
        k = self.channel_k(pooled).squeeze(-1)
        v = self.channel_v(pooled).squeeze(-1)
        alpha = F.softmax(q @ k.transpose(1, 2), dim=-1)  # (N, C, C)
        att = torch.sigmoid(self.fc((alpha @ v).unsqueeze(-1)))  # (N, C, 1, 1)
        return x * att + x, att

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xc, att = self.Channel_Tracer(x)
        xc = self.bn(xc)
        weights = att.flatten(1)  # (N, C)
        threshold = quantile_lastdim(weights, self.gamma)
        weights = torch.where(weights <= threshold, torch.zeros_like(weights), weights)
        dropped = xc * weights[:, :, None, None]
        q = self.spatial_q(dropped).squeeze(1)  # (N, H, W)
        k = self.spatial_k(dropped).squeeze(1)
        v = self.spatial_v(dropped).squeeze(1)
        alpha = F.softmax(q @ k.transpose(1, 2), dim=-1)  # (N, H, H)
        return (alpha @ v + v).unsqueeze(1)


class FrequencyEdgeModule(nn.Module):
    """Official `Frequency_Edge_Module`: high-pass the feature map in frequency (radius r),
    channel-trace it, refine with depthwise convolutions into a one-channel edge map, and add
    the edge to the features. Returns (features + edge, edge)."""

    def __init__(self, radius: float, channel: int, size: tuple[int, int] | None = None):
        super().__init__()
        self.radius = radius
        self.highpass = FrequencyHighPass(radius, size)  # no parameters: keys unaffected
        self.UAM = UnionAttentionModule(channel, only_channel_tracing=True)
        self.DWSConv = DWSConv(channel, channel, kernel=3, padding=1, kernels_per_layer=1)
        self.DWConv1, self.DWConv2, self.DWConv3, self.DWConv4 = dilated_pyramid(channel, channel // 4)
        self.conv = BasicConv2d(channel, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        high, _ = self.UAM.Channel_Tracer(self.highpass(x))
        e = self.DWSConv(high)
        e = torch.cat([self.DWConv1(e), self.DWConv2(e), self.DWConv3(e), self.DWConv4(e)], dim=1) + e
        edge = torch.relu(self.conv(e))
        return x + edge, edge


class RFB_Block(nn.Module):  # noqa: N801 (official name)
    """Receptive field block: four branches (1x1; 1xk, kx1, 3x3 dilated k for k = 3, 5, 7),
    concatenated, fused by a 3x3, plus a 1x1 residual, then ReLU."""

    # Made with setattr below (their checkpoint names): declared so that mypy knows their type.
    branch1: nn.Sequential
    branch2: nn.Sequential
    branch3: nn.Sequential

    def __init__(self, in_channel: int, out_channel: int):
        super().__init__()
        self.relu = nn.ReLU()
        self.branch0 = nn.Sequential(BasicConv2d(in_channel, out_channel, 1))
        for i, k in ((1, 3), (2, 5), (3, 7)):
            setattr(
                self,
                f"branch{i}",
                nn.Sequential(
                    BasicConv2d(in_channel, out_channel, 1),
                    BasicConv2d(out_channel, out_channel, (1, k), padding=(0, k // 2)),
                    BasicConv2d(out_channel, out_channel, (k, 1), padding=(k // 2, 0)),
                    BasicConv2d(out_channel, out_channel, 3, padding=k, dilation=k),
                ),
            )
        self.conv_cat = BasicConv2d(4 * out_channel, out_channel, 3, padding=1)
        self.conv_res = BasicConv2d(in_channel, out_channel, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cat = torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], dim=1)
        return self.relu(self.conv_cat(cat) + self.conv_res(x))


class aggregation(nn.Module):  # noqa: N801 (official name)
    """Multi-level aggregation of the RFB outputs at strides 32, 16, 8 (channels c0 < c1 < c2
    from the finest), ending in union attention: one map at stride 8."""

    def __init__(self, channel: tuple[int, int, int]):
        super().__init__()
        c0, c1, c2 = channel
        self.relu = nn.ReLU()
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.conv_upsample1 = BasicConv2d(c2, c1, 3, padding=1)
        self.conv_upsample2 = BasicConv2d(c2, c0, 3, padding=1)
        self.conv_upsample3 = BasicConv2d(c1, c0, 3, padding=1)
        self.conv_upsample4 = BasicConv2d(c2, c2, 3, padding=1)
        self.conv_upsample5 = BasicConv2d(c2 + c1, c2 + c1, 3, padding=1)
        self.conv_concat2 = BasicConv2d(c2 + c1, c2 + c1, 3, padding=1)
        self.conv_concat3 = BasicConv2d(c0 + c1 + c2, c0 + c1 + c2, 3, padding=1)
        self.UAM = UnionAttentionModule(c0 + c1 + c2)

    def forward(self, e4: torch.Tensor, e3: torch.Tensor, e2: torch.Tensor) -> torch.Tensor:
        up = self.upsample
        e4_up = up(e4)
        e3_1 = self.conv_upsample1(e4_up) * e3
        e2_1 = self.conv_upsample2(up(e4_up)) * self.conv_upsample3(up(e3)) * e2
        e3_2 = self.conv_concat2(torch.cat([e3_1, self.conv_upsample4(e4_up)], dim=1))
        e2_2 = torch.cat([e2_1, self.conv_upsample5(up(e3_2))], dim=1)
        return self.UAM(self.conv_concat3(e2_2))


class ObjectAttention(nn.Module):
    """Refine a decoder map with an encoder feature: weight the feature by the object
    probability plus the faint background (1 - p <= denoise), depthwise-refine, add back."""

    def __init__(self, channel: int, kernel_size: int = 3, denoise: float = DENOISE):
        super().__init__()
        self.channel = channel
        self.denoise = denoise
        half = channel // 2
        self.DWSConv = DWSConv(channel, half, kernel=kernel_size, padding=1, kernels_per_layer=1)
        self.DWConv1, self.DWConv2, self.DWConv3, self.DWConv4 = dilated_pyramid(half, channel // 8)
        self.conv1 = BasicConv2d(half, 1, 1)

    def forward(self, decoder_map: torch.Tensor, encoder_map: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(decoder_map)
        background = 1 - p
        background = torch.where(background > self.denoise, torch.zeros_like(background), background)
        x = p * encoder_map + background * encoder_map
        x = self.DWSConv(x)
        x = torch.cat([self.DWConv1(x), self.DWConv2(x), self.DWConv3(x), self.DWConv4(x)], dim=1) + x
        return torch.relu(self.conv1(x)) + decoder_map
