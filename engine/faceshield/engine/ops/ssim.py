"""Differentiable SSIM (Wang et al. 2004) matching scikit-image's Gaussian-weighted variant.

`structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=1)` filters with an 11-tap Gaussian and averages the SSIM map after cropping 5
pixels from each border. The cropped map does not depend on border handling, so a valid
(unpadded) convolution gives the same numbers.
"""

from __future__ import annotations

import torch
from torch import nn

from .filters import _gaussian_1d, separable_filter

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"ssim needs two (N, C, H, W) tensors of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if min(x.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"ssim needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {tuple(x.shape[-2:])}")


def _window(x: torch.Tensor) -> torch.Tensor:
    return separable_filter(x, _gaussian_1d(SSIM_WINDOW, SSIM_SIGMA), valid=True)


def reference_statistics(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Window mean and mean square of the fixed image y: what `ssim_map` would filter anew each
    call. An attack compares every step's x against one original, so it computes these once."""
    uy, uyy = _window(torch.cat([y, y * y], dim=1)).chunk(2, dim=1)
    return uy, uyy


def ssim_map(
    x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, y_stats: tuple[torch.Tensor, torch.Tensor] | None = None
) -> torch.Tensor:
    """Per-pixel SSIM of (N, C, H, W) images, valid region only: (N, C, H - 10, W - 10).
    `y_stats`: `reference_statistics(y)`, when the caller keeps them across calls."""
    _check_pair(x, y)
    c1, c2 = SSIM_C1 * data_range**2, SSIM_C2 * data_range**2
    # One filter pass over the statistics (x, x^2, xy; and y, y^2 unless given).
    if y_stats is None:
        ux, uy, uxx, uyy, uxy = _window(torch.cat([x, y, x * x, y * y, x * y], dim=1)).chunk(5, dim=1)
    else:
        (uy, uyy), (ux, uxx, uxy) = y_stats, _window(torch.cat([x, x * x, x * y], dim=1)).chunk(3, dim=1)
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
    return ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM per image, (N,), channels averaged, as scikit-image with `channel_axis`."""
    return ssim_map(x, y, data_range).flatten(1).mean(dim=1)


def changed_region(h: int, w: int, top: int, left: int, bottom: int, right: int) -> tuple[int, int, int, int] | None:
    """The rows and columns whose valid windows can see rows [top, bottom) x cols [left, right):
    (t, l, b, r) to crop, or None when that crop is too small to hold a window (use the whole image)."""
    r = SSIM_WINDOW - 1  # two window radii: the crop's valid map covers every window touching the region
    t, lft = max(top - r, 0), max(left - r, 0)
    b, rgt = min(bottom + r, h), min(right + r, w)
    if min(h, w) < SSIM_WINDOW or b - t < SSIM_WINDOW or rgt - lft < SSIM_WINDOW:
        return None
    return t, lft, b, rgt


def _mean_with_unchanged(local: torch.Tensor, channels: int, h: int, w: int) -> torch.Tensor:
    """Whole-image mean SSIM from the region's map; every other window scores exactly 1."""
    r = SSIM_WINDOW - 1
    total = channels * (h - r) * (w - r)  # windows in the whole image's valid map
    return (local.flatten(1).sum(dim=1) + (total - local[0].numel())) / total


def ssim_where_changed(
    x: torch.Tensor, y: torch.Tensor, top: int, left: int, bottom: int, right: int, data_range: float = 1.0
) -> torch.Tensor:
    """`ssim(x, y)` for images that differ only inside rows [top, bottom) x cols [left, right).

    Every window that cannot see a changed pixel compares identical pixels and scores exactly 1,
    so only the windows around the region are computed; the value and its gradient equal the
    whole-image `ssim`, at the cost of the region instead of the whole photo.
    """
    return SSIMAgainst(y, (top, left, bottom, right), data_range)(x)


class SSIMAgainst(nn.Module):
    """SSIM of any x against one fixed image y, for the many calls of an attack: y's window
    statistics are computed once, and, given the region where x may differ from y, only the
    windows that can see it (`ssim_where_changed`). Same values and gradients as `ssim(x, y)`,
    to float rounding."""

    def __init__(self, y: torch.Tensor, region: tuple[int, int, int, int] | None = None, data_range: float = 1.0):
        super().__init__()
        _check_pair(y, y)
        self.shape, self.data_range = tuple(y.shape), data_range
        h, w = y.shape[-2:]
        self.crop = changed_region(h, w, *region) if region is not None else None
        if self.crop is not None:
            t, lft, b, rgt = self.crop
            y = y[:, :, t:b, lft:rgt]
        self.y = y
        self.y_stats = reference_statistics(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape) != self.shape:
            raise ValueError(f"SSIMAgainst was built for {self.shape}, got {tuple(x.shape)}")
        if self.crop is None:
            return ssim_map(x, self.y, self.data_range, self.y_stats).flatten(1).mean(dim=1)
        t, lft, b, rgt = self.crop
        local = ssim_map(x[:, :, t:b, lft:rgt], self.y, self.data_range, self.y_stats)
        return _mean_with_unchanged(local, x.shape[1], *self.shape[-2:])


class SSIM(nn.Module):
    """Module form of `ssim`."""

    def __init__(self, data_range: float = 1.0):
        super().__init__()
        self.data_range = data_range

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ssim(x, y, self.data_range)
