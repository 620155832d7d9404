"""Blur filters and Ruiz et al.'s blur schedule (spread-spectrum and EoT attacks).

Filters are depthwise convolutions with zero padding of ``kernel // 2``, as in the smoothing
layers the reference attack code uses, so the output keeps the input's size.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


@functools.lru_cache(maxsize=64)
def _gaussian_1d(kernel: int, sigma: float) -> torch.Tensor:
    x = torch.arange(kernel, dtype=torch.float64) - (kernel - 1) / 2
    w = torch.exp(-(x**2) / (2 * sigma**2))
    return (w / w.sum()).to(torch.float32)


def gaussian_kernel2d(kernel: int, sigma: float) -> torch.Tensor:
    """Normalized (kernel, kernel) Gaussian weights."""
    g = _gaussian_1d(kernel, float(sigma))
    return torch.outer(g, g)


def _depthwise(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    k = weight.shape[-1]
    w = weight.to(device=x.device, dtype=x.dtype).expand(c, 1, k, k)
    return F.conv2d(x, w, padding=k // 2, groups=c)


def gaussian_blur(x: torch.Tensor, kernel: int = 11, sigma: float = 1.0) -> torch.Tensor:
    """Gaussian blur of (N, C, H, W) with a (kernel x kernel) window, zero padding."""
    return _depthwise(x, gaussian_kernel2d(kernel, sigma)[None, None])


def box_blur(x: torch.Tensor, kernel: int = 3) -> torch.Tensor:
    """Mean filter of (N, C, H, W) with a (kernel x kernel) window, zero padding."""
    w = torch.full((1, 1, kernel, kernel), 1.0 / (kernel * kernel))
    return _depthwise(x, w)


class GaussianBlur(nn.Module):
    """Module form of `gaussian_blur`."""

    def __init__(self, kernel: int = 11, sigma: float = 1.0):
        super().__init__()
        self.kernel, self.sigma = kernel, sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gaussian_blur(x, self.kernel, self.sigma)


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
