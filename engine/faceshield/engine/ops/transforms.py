"""Differentiable stand-ins for what a photo meets after it is shared: JPEG and resizing.

The robust stage of the attack (expectation over transformation) runs the generator on T(x) for
transforms drawn per step, so the protection is aimed at the photo a forger would actually get.
Images are in generator space, [-1, 1], (N, 3, H, W); each function has a module twin that holds
its parameter.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidInputError

JPEG_QUALITY_RANGE = (70, 95)
RESIZE_FACTOR_RANGE = (0.5, 1.0)
MIN_ROBUST_SIDE = 32  # a 0.5x resize must leave at least one 16x16 JPEG block per side


def jpeg(x: torch.Tensor, quality: float) -> torch.Tensor:
    """Differentiable JPEG encode-decode at `quality` (1-100), kornia's codec (Reich et al. 2024)
    in metric space; straight-through for the rounding it models."""
    from kornia.enhance import jpeg_codec_differentiable

    if not 1 <= quality <= 100:
        raise InvalidInputError("jpeg_quality", f"must lie in [1, 100], got {quality}")
    q = torch.tensor([float(quality)], device=x.device, dtype=torch.float32)
    y = jpeg_codec_differentiable(((x + 1) / 2).clamp(0, 1).float(), q)
    return (y * 2 - 1).to(x.dtype)


def resize_down_up(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Shrink by `factor` (antialiased bilinear, as a photo site's thumbnailer would) and enlarge
    back to the input's size (bilinear)."""
    if not 0 < factor <= 1:
        raise InvalidInputError("resize_factor", f"must lie in (0, 1], got {factor}")
    h, w = x.shape[-2:]
    if factor == 1:
        return x
    small = (max(1, round(h * factor)), max(1, round(w * factor)))
    down = F.interpolate(x, size=small, mode="bilinear", align_corners=False, antialias=True)
    return F.interpolate(down, size=(h, w), mode="bilinear", align_corners=False)


class JPEG(nn.Module):
    """Module form of `jpeg` at a fixed quality."""

    def __init__(self, quality: float):
        super().__init__()
        self.quality = float(quality)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return jpeg(x, self.quality)

    def __repr__(self) -> str:
        return f"JPEG(q={self.quality:.0f})"


class ResizeDownUp(nn.Module):
    """Module form of `resize_down_up` at a fixed factor."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = float(factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resize_down_up(x, self.factor)

    def __repr__(self) -> str:
        return f"ResizeDownUp({self.factor:.2f})"


def check_robust_side(resolution: int, victim: str) -> None:
    """The robust stage needs room for a 0.5x resize and a JPEG block at the victim's size."""
    if resolution < MIN_ROBUST_SIDE:
        raise InvalidInputError(
            "method",
            f"the robust stage needs victims of at least {MIN_ROBUST_SIDE}x{MIN_ROBUST_SIDE} (a 0.5x resize must keep "
            f"a 16-pixel JPEG block); victim {victim!r} works at {resolution}x{resolution}",
        )
