"""Differentiable SSIM (Wang et al. 2004) matching scikit-image's Gaussian-weighted variant.

`structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=1)` filters with an 11-tap Gaussian and averages the SSIM map after cropping 5
pixels from each border. The cropped map does not depend on border handling, so a valid
(unpadded) convolution gives the same numbers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .filters import _gaussian_1d

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2


def _filter_valid(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    k = g.numel()
    x = F.conv2d(x, g.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)
    return F.conv2d(x, g.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)


def ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-pixel SSIM of (N, C, H, W) images, valid region only: (N, C, H - 10, W - 10)."""
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"ssim needs two (N, C, H, W) tensors of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if min(x.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"ssim needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {tuple(x.shape[-2:])}")
    g = _gaussian_1d(SSIM_WINDOW, SSIM_SIGMA).to(device=x.device, dtype=x.dtype)
    c1, c2 = SSIM_C1 * data_range**2, SSIM_C2 * data_range**2
    # One filter pass over the five statistics.
    stats = _filter_valid(torch.cat([x, y, x * x, y * y, x * y], dim=1), g)
    ux, uy, uxx, uyy, uxy = stats.chunk(5, dim=1)
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
    return ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM per image, (N,), channels averaged, as scikit-image with `channel_axis`."""
    return ssim_map(x, y, data_range).flatten(1).mean(dim=1)


def ssim_where_changed(x: torch.Tensor, y: torch.Tensor, top: int, left: int, bottom: int, right: int,
                       data_range: float = 1.0) -> torch.Tensor:
    """`ssim(x, y)` for images that differ only inside rows [top, bottom) x cols [left, right).

    Every window that cannot see a changed pixel compares identical pixels and scores exactly 1,
    so only the windows around the region are computed; the value and its gradient equal the
    whole-image `ssim`, at the cost of the region instead of the whole photo.
    """
    h, w = x.shape[-2:]
    r = SSIM_WINDOW - 1  # two window radii: the crop's valid map covers every window touching the region
    t, lft = max(top - r, 0), max(left - r, 0)
    b, rgt = min(bottom + r, h), min(right + r, w)
    if min(h, w) < SSIM_WINDOW or b - t < SSIM_WINDOW or rgt - lft < SSIM_WINDOW:
        return ssim(x, y, data_range)
    local = ssim_map(x[:, :, t:b, lft:rgt], y[:, :, t:b, lft:rgt], data_range)
    total = x.shape[1] * (h - r) * (w - r)  # windows in the whole image's valid map
    return (local.flatten(1).sum(dim=1) + (total - local[0].numel())) / total


class SSIM(nn.Module):
    """Module form of `ssim`."""

    def __init__(self, data_range: float = 1.0):
        super().__init__()
        self.data_range = data_range

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ssim(x, y, self.data_range)
