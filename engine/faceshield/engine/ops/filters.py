"""Blur filters and Ruiz et al.'s blur schedule (spread-spectrum and EoT attacks).

Filters have zero padding of ``kernel // 2``, as the depthwise smoothing layers of the reference
attack code, so the output keeps the input's size. Every filter here is separable (Gaussian, box);
`separable_filter` runs it as two products with banded matrices on small CPU images and as two 1-D
depthwise convolutions otherwise, whichever is faster there (same numbers to float rounding).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import NamedTuple

import torch
import torch.nn.functional as F


@functools.lru_cache(maxsize=64)
def _gaussian_1d(kernel: int, sigma: float) -> torch.Tensor:
    x = torch.arange(kernel, dtype=torch.float64) - (kernel - 1) / 2
    w = torch.exp(-(x**2) / (2 * sigma**2))
    return (w / w.sum()).to(torch.float32)


MATMUL_MAX_SIDE = 192


@functools.lru_cache(maxsize=64)
def _banded(n: int, taps: tuple[float, ...], valid: bool, device: str, dtype: torch.dtype) -> torch.Tensor:
    """(n_out, n) matrix M with (M @ v)[i] = sum_j taps[j] * v[i + j - pad]: cross-correlation
    with zero padding (pad = k // 2, n_out = n) or none (valid, pad = 0, n_out = n - k + 1)."""
    k = len(taps)
    n_out = n - k + 1 if valid else n
    start = 0 if valid else -(k // 2)
    cols = torch.arange(n_out)[:, None] + start + torch.arange(k)[None, :]
    weights = torch.tensor(taps, dtype=torch.float64).expand(n_out, k)
    inside = (cols >= 0) & (cols < n)
    m = torch.zeros(n_out, n, dtype=torch.float64)
    m[torch.arange(n_out)[:, None].expand(n_out, k)[inside], cols[inside]] = weights[inside]
    return m.to(device=device, dtype=dtype)


def separable_filter(x: torch.Tensor, taps: torch.Tensor, valid: bool = False) -> torch.Tensor:
    """Filter (N, C, H, W) with the 2-D kernel outer(taps, taps), per channel: zero padding that
    keeps the size, or `valid` (no padding: (H - k + 1, W - k + 1))."""
    h, w = x.shape[-2:]
    # CPU only: measured there; on a GPU the products would run in TF32 wherever the engine allows
    # it, and SSIM's variances (differences of nearly equal window means) need float32's mantissa.
    if x.device.type == "cpu" and max(h, w) <= MATMUL_MAX_SIDE:
        key = (tuple(float(t) for t in taps), valid, str(x.device), x.dtype)
        return _banded(h, *key) @ x @ _banded(w, *key).mT
    c, k = x.shape[1], taps.numel()
    g = taps.to(device=x.device, dtype=x.dtype)
    pad = 0 if valid else k // 2
    x = F.conv2d(x, g.view(1, 1, k, 1).expand(c, 1, k, 1), padding=(pad, 0), groups=c)
    return F.conv2d(x, g.view(1, 1, 1, k).expand(c, 1, 1, k), padding=(0, pad), groups=c)


def gaussian_blur(x: torch.Tensor, kernel: int = 11, sigma: float = 1.0) -> torch.Tensor:
    """Gaussian blur of (N, C, H, W) with a (kernel x kernel) window, zero padding."""
    return separable_filter(x, _gaussian_1d(kernel, float(sigma)))


def box_blur(x: torch.Tensor, kernel: int = 3) -> torch.Tensor:
    """Mean filter of (N, C, H, W) with a (kernel x kernel) window, zero padding."""
    return separable_filter(x, torch.full((kernel,), 1.0 / kernel))


class Blur(NamedTuple):
    """One blur of the schedule: ``kind`` is "gaussian" (with ``sigma``) or "box"."""

    kind: str
    kernel: int
    sigma: float = 0.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "gaussian":
            return gaussian_blur(x, self.kernel, self.sigma)
        return box_blur(x, self.kernel)


def ruiz_blur_schedule() -> Iterator[Blur]:
    """The endless blur sequence of Ruiz et al.'s spread-spectrum and EoT attacks.

    Their state machine: Gaussian 11 with sigma 1, 1.5, ..., 3.0, then mean filters; the switch
    to mean filters advances the kernel immediately, so the cycle is
    G1, G1.5, G2, G2.5, G3, M5, M7, M9 (period 8). Spread-spectrum takes one blur per step,
    EoT nine per step, both continuing where the previous step stopped.
    """
    sigma, box, kind = 1.0, 3, 1
    while True:
        yield Blur("gaussian", 11, sigma) if kind == 1 else Blur("box", box)
        if kind == 1:
            sigma += 0.5
            if sigma >= 3.2:
                kind, sigma = 2, 1.0
        if kind == 2:
            box += 2
            if box >= 11:
                kind, box = 1, 3
